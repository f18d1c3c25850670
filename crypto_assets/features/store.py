"""The features table: which bars to (re)compute, reading them, and replacing stored rows.

Works on DuckDB and PostgreSQL alike (bulk staging through crypto_assets.warehouse.bulk).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crypto_assets.features.indicators import (
    BAR_COLUMNS,
    FEATURE_COLUMNS,
    FLOAT_FEATURES,
    OVERLAP_BARS,
    SERIES,
)
from crypto_assets.market import Timeframe
from crypto_assets.warehouse.bulk import append_frame, drop_staged
from crypto_assets.warehouse.frames import read_frame

FEATURES_TABLE = "features"
#: dbt models holding resampled bars, coarsest last; only those present in the warehouse are used
RESAMPLED_TABLES = {"15m": "ohlc_15m", "1h": "ohlc_1h", "4h": "ohlc_4h", "1d": "ohlc_1d"}

FEATURES_DDL = f"""
CREATE TABLE IF NOT EXISTS {FEATURES_TABLE} (
    exchange VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    timeframe VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,  -- UTC bar-open time
    bar_number INTEGER NOT NULL,  -- bars of the series before this one
    is_warmup BOOLEAN NOT NULL,
    {", ".join(f"{name} REAL" for name in FLOAT_FEATURES)},
    volume_anomaly BOOLEAN NOT NULL,
    hour_of_day SMALLINT NOT NULL,
    day_of_week SMALLINT NOT NULL,
    PRIMARY KEY (exchange, symbol, timeframe, ts)
)
"""

SCOPE_DDL = (
    "CREATE TEMP TABLE features_scope "
    "(exchange VARCHAR, symbol VARCHAR, timeframe VARCHAR, from_ts TIMESTAMPTZ)"
)


def ensure_features_table(connection: Connection) -> None:
    connection.exec_driver_sql(FEATURES_DDL)


def bar_sources(connection: Connection, base: Timeframe) -> dict[str, str]:
    """timeframe -> table of its bars: raw_ohlc for the base, each dbt resampled model present."""
    candidates = [
        table for name, table in RESAMPLED_TABLES.items() if Timeframe.parse(name).seconds > base.seconds
    ]
    present = set()
    if candidates:
        # a plain query read to the end (SQLAlchemy's inspector leaves a DuckDB result open)
        result = connection.execute(
            sa.text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name IN :names"
            ).bindparams(sa.bindparam("names", expanding=True)),
            {"names": candidates},
        )
        present = {row[0] for row in result.fetchall()}
    sources = {base.name: "raw_ohlc"}
    for name, table in RESAMPLED_TABLES.items():
        if table in present:
            sources[name] = table
    return sources


@dataclass
class Plan:
    """Per series: where the stored features end and from which bar to recompute."""

    anchors: pd.DataFrame  # SERIES + newest_ts, anchor_ts, anchor_bar_number (NaT/NaN: full)


def plan_incremental(connection: Connection) -> Plan:
    """Newest stored feature row of each series and the stored row OVERLAP_BARS before it."""
    result = connection.execute(
        sa.text(
            f"""
            SELECT exchange, symbol, timeframe, ts, bar_number, rn FROM (
                SELECT exchange, symbol, timeframe, ts, bar_number,
                       row_number() OVER (PARTITION BY exchange, symbol, timeframe ORDER BY ts DESC) AS rn
                FROM {FEATURES_TABLE}
            ) ranked WHERE rn = 1 OR rn = :anchor
            """
        ),
        {"anchor": OVERLAP_BARS + 1},
    )
    rows = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if rows.empty:
        return Plan(pd.DataFrame(columns=[*SERIES, "newest_ts", "anchor_ts", "anchor_bar_number"]))
    rows["ts"] = pd.to_datetime(rows["ts"], utc=True)
    newest = rows[rows["rn"] == 1][[*SERIES, "ts"]].rename(columns={"ts": "newest_ts"})
    anchor = rows[rows["rn"] != 1][[*SERIES, "ts", "bar_number"]].rename(
        columns={"ts": "anchor_ts", "bar_number": "anchor_bar_number"}
    )
    return Plan(newest.merge(anchor, on=SERIES, how="left"))


def series_in(connection: Connection, timeframe: str, table: str) -> set[tuple[str, str, str]]:
    """The (exchange, symbol, timeframe) series `table` holds bars of."""
    result = connection.execute(
        sa.text(f"SELECT DISTINCT exchange, symbol, timeframe FROM {table} WHERE timeframe = :timeframe"),
        {"timeframe": timeframe},
    )
    return {tuple(row) for row in result}


def read_bars(connection: Connection, timeframe: str, table: str, since: pd.Timestamp | None) -> pd.DataFrame:
    """Bars of `timeframe` from `table`; resampled buckets only when complete and closed."""
    columns = ", ".join(BAR_COLUMNS)
    where = ["timeframe = :timeframe"]
    if table != "raw_ohlc":
        where.append("is_complete AND is_closed")
    params: dict = {"timeframe": timeframe}
    if since is not None:
        where.append("ts >= :since")
        params["since"] = since.to_pydatetime()
    frame = read_frame(
        connection, f"SELECT {columns} FROM {table} WHERE {' AND '.join(where)}", params, timestamps=["ts"]
    )
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_COLUMNS})
    for column in ("open", "high", "low", "close", "volume"):
        frame[column] = frame[column].astype("float64")
    return frame


def replace_features(connection: Connection, features: pd.DataFrame, *, everything: bool) -> None:
    """In the caller's transaction: drop the stored rows each series recomputes (all of the table
    with `everything`), then bulk-append `features`."""
    if everything:
        connection.exec_driver_sql(f"DELETE FROM {FEATURES_TABLE}")
    elif len(features):
        scope = (
            features.groupby(SERIES, as_index=False, sort=False)["ts"].min().rename(columns={"ts": "from_ts"})
        )
        if connection.dialect.name == "duckdb":
            connection.exec_driver_sql(SCOPE_DDL.replace("CREATE TEMP", "CREATE OR REPLACE TEMP"))
        else:
            connection.exec_driver_sql(SCOPE_DDL + " ON COMMIT DROP")
        append_frame(connection, scope, "features_scope")
        connection.exec_driver_sql(
            f"""
            DELETE FROM {FEATURES_TABLE} WHERE EXISTS (
                SELECT 1 FROM features_scope s
                WHERE s.exchange = {FEATURES_TABLE}.exchange AND s.symbol = {FEATURES_TABLE}.symbol
                  AND s.timeframe = {FEATURES_TABLE}.timeframe AND {FEATURES_TABLE}.ts >= s.from_ts
            )
            """
        )
        drop_staged(connection, "features_scope")
    if len(features):
        frame = features[FEATURE_COLUMNS].assign(bar_number=features["bar_number"].astype(np.int32))
        append_frame(connection, frame, FEATURES_TABLE)
