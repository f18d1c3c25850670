"""The features table: which bars to (re)compute, reading them, and replacing stored rows.

Works on DuckDB and PostgreSQL alike (bulk staging through crypto_assets.warehouse.bulk).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crypto_assets.features.indicators import (
    FEATURE_COLUMNS,
    FLOAT_FEATURES,
    OVERLAP_BARS,
    SERIES,
)
from crypto_assets.market import Timeframe
from crypto_assets.names import resampled_models
from crypto_assets.warehouse.bulk import append_frame, drop_staged

if TYPE_CHECKING:  # loaded on first use, not with the code location
    import pandas as pd
    from sqlalchemy.engine import Connection

FEATURES_TABLE = "features"

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
    import sqlalchemy as sa

    candidates = list(resampled_models(base).values())
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
    for name, table in resampled_models(base).items():
        if table in present:
            sources[name] = table
    return sources


@dataclass
class Plan:
    """Per series: where the stored features end and from which bar to recompute."""

    anchors: pd.DataFrame  # SERIES + newest_ts, anchor_ts, anchor_bar_number (NaT/NaN: full)


def plan_incremental(connection: Connection) -> Plan:
    """Newest stored feature row of each series and the stored row OVERLAP_BARS before it.

    A series stores one row per bar, numbered 0, 1, ... (`bar_number`), so the anchor is the row
    numbered OVERLAP_BARS below the newest: found by an aggregate and an equi-join instead of
    ranking every stored row. A series whose numbers have a hole finds no anchor and is
    recomputed whole, which is always correct.
    """
    import pandas as pd
    import sqlalchemy as sa

    result = connection.execute(
        sa.text(
            f"""
            WITH newest AS (
                SELECT exchange, symbol, timeframe, max(ts) AS newest_ts, max(bar_number) AS newest_number
                FROM {FEATURES_TABLE} GROUP BY exchange, symbol, timeframe
            )
            SELECT n.exchange, n.symbol, n.timeframe, n.newest_ts,
                   f.ts AS anchor_ts, f.bar_number AS anchor_bar_number
            FROM newest n LEFT JOIN {FEATURES_TABLE} f
              ON f.exchange = n.exchange AND f.symbol = n.symbol AND f.timeframe = n.timeframe
             AND f.bar_number = n.newest_number - :overlap
            """
        ),
        {"overlap": OVERLAP_BARS},
    )
    anchors = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if anchors.empty:
        return Plan(pd.DataFrame(columns=[*SERIES, "newest_ts", "anchor_ts", "anchor_bar_number"]))
    for column in ("newest_ts", "anchor_ts"):
        anchors[column] = pd.to_datetime(anchors[column], utc=True)
    return Plan(anchors)


def series_in(connection: Connection, timeframe: str, table: str) -> set[tuple[str, str, str]]:
    """The (exchange, symbol, timeframe) series `table` holds bars of."""
    import sqlalchemy as sa

    result = connection.execute(
        sa.text(f"SELECT DISTINCT exchange, symbol, timeframe FROM {table} WHERE timeframe = :timeframe"),
        {"timeframe": timeframe},
    )
    return {tuple(row) for row in result}


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
            DELETE FROM {FEATURES_TABLE} USING features_scope s
            WHERE s.exchange = {FEATURES_TABLE}.exchange AND s.symbol = {FEATURES_TABLE}.symbol
              AND s.timeframe = {FEATURES_TABLE}.timeframe AND {FEATURES_TABLE}.ts >= s.from_ts
            """
        )
        drop_staged(connection, "features_scope")
    if len(features):
        frame = features[FEATURE_COLUMNS].assign(bar_number=features["bar_number"].astype("int32"))
        append_frame(connection, frame, FEATURES_TABLE)
    if everything and connection.dialect.name == "postgresql":
        # a table rewritten in bulk has no statistics until autovacuum comes by; the next
        # incremental plan groups it by series and needs them (a hash of ~100 series, not a sort
        # of every row spilled to disk)
        connection.exec_driver_sql(f"ANALYZE {FEATURES_TABLE}")
