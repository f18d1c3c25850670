"""Idempotent writes of candles and quarantined rows, keyed on (exchange, symbol, timeframe, ts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crypto_assets.warehouse.bulk import append_frame, drop_staged, stage_frame, to_arrow
from crypto_assets.warehouse.schema import BAR_COLUMNS, KEY_COLUMNS, VALUE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from sqlalchemy.engine import Connection

QUARANTINE_COLUMNS = [
    "exchange", "timeframe", "source_ref", "symbol", "raw_timestamp", "ts",
    *VALUE_COLUMNS, "reason", "run_id", "quarantined_at",
]  # fmt: skip


@dataclass
class WriteCounts:
    """What one write did: every staged candle is exactly one of inserted/updated/unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0

    def __iadd__(self, other: WriteCounts) -> WriteCounts:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.quarantined += other.quarantined
        return self


def _join_on_key(left: str, right: str) -> str:
    return " AND ".join(f"{left}.{column} = {right}.{column}" for column in KEY_COLUMNS)


def _values_differ(left: str, right: str) -> str:
    return " OR ".join(f"{left}.{column} IS DISTINCT FROM {right}.{column}" for column in VALUE_COLUMNS)


def upsert_candles(
    connection: Connection, candles: pd.DataFrame | pa.Table, *, nothing_stored: bool = False
) -> WriteCounts:
    """Insert new bars and update changed ones, in the caller's transaction.

    `candles` holds KEY_COLUMNS + VALUE_COLUMNS with unique keys (validation merged duplicates);
    `nothing_stored` says the caller knows none of their keys is stored (then they are appended).
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if len(candles) == 0:
        return WriteCounts()
    if isinstance(candles, pd.DataFrame):
        candles = to_arrow(candles[KEY_COLUMNS + VALUE_COLUMNS])
    frame = candles.select(KEY_COLUMNS + VALUE_COLUMNS)
    now = np.full(len(frame), np.datetime64(datetime.now(UTC).replace(tzinfo=None), "us"))
    frame = frame.append_column("loaded_at", pa.array(now, type=pa.timestamp("us", tz="UTC")))
    if nothing_stored and _append_new(connection, frame):
        return WriteCounts(inserted=len(frame))
    stage_frame(connection, frame, "staged_ohlc", "raw_ohlc")
    if connection.dialect.name == "postgresql":
        # a fresh temp table has no statistics: without them the planner hashes all of raw_ohlc
        connection.exec_driver_sql("ANALYZE staged_ohlc")
    try:
        inserted, updated = connection.exec_driver_sql(
            f"""
            SELECT count(*) FILTER (WHERE t.ts IS NULL),
                   count(*) FILTER (WHERE t.ts IS NOT NULL AND ({_values_differ("t", "s")}))
            FROM staged_ohlc s LEFT JOIN raw_ohlc t ON {_join_on_key("t", "s")}
            """
        ).one()
        if inserted or updated:
            assignments = ", ".join(f"{c} = excluded.{c}" for c in [*VALUE_COLUMNS, "loaded_at"])
            connection.exec_driver_sql(
                f"""
                INSERT INTO raw_ohlc SELECT * FROM staged_ohlc
                ON CONFLICT ({", ".join(KEY_COLUMNS)}) DO UPDATE SET {assignments}
                WHERE {_values_differ("raw_ohlc", "excluded")}
                """
            )
    finally:
        drop_staged(connection, "staged_ohlc")
    return WriteCounts(
        inserted=int(inserted), updated=int(updated), unchanged=len(frame) - int(inserted) - int(updated)
    )


def stored_days(
    connection: Connection, exchange: str, timeframe: str, symbols: list[str], start: datetime, end: datetime
) -> set[pd.Timestamp]:
    """UTC days of [start, end) for which raw_ohlc holds any bar of `symbols` (one query per load)."""
    import pandas as pd
    import sqlalchemy as sa

    query = sa.text(
        "SELECT DISTINCT date_trunc('day', ts) FROM raw_ohlc WHERE exchange = :exchange "
        "AND timeframe = :timeframe AND symbol IN :symbols AND ts >= :start AND ts < :end"
    ).bindparams(sa.bindparam("symbols", expanding=True))
    params = {
        "exchange": exchange,
        "timeframe": timeframe,
        "symbols": list(symbols),
        "start": start,
        "end": end,
    }
    return {
        pd.Timestamp(day).tz_convert("UTC") if pd.Timestamp(day).tzinfo else pd.Timestamp(day, tz="UTC")
        for (day,) in connection.execute(query, params)
    }


def _append_new(connection: Connection, frame: pa.Table) -> bool:
    """Bulk-append bars none of which is stored; False (and nothing written) if another writer got there
    first, so the caller falls back to the upsert. DuckDB has a single writer per file."""
    if connection.dialect.name == "duckdb":
        append_frame(connection, frame, "raw_ohlc")
        return True
    import psycopg

    savepoint = connection.begin_nested()
    try:
        append_frame(connection, frame, "raw_ohlc")
    except psycopg.errors.UniqueViolation:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def upsert_quarantine(connection: Connection, rows: pd.DataFrame, run_id: str | None) -> int:
    """Keep rejected rows with their reason; the same source row is kept once, however often seen."""
    import pandas as pd

    if rows.empty:
        return 0
    frame = rows.copy()
    frame["run_id"] = run_id
    frame["quarantined_at"] = pd.Timestamp(datetime.now(UTC))
    frame = frame[QUARANTINE_COLUMNS]
    stage_frame(connection, frame, "staged_quarantine", "ohlc_quarantine")
    try:
        key = ", ".join(["exchange", "timeframe", "source_ref"])
        assignments = ", ".join(
            f"{c} = excluded.{c}"
            for c in QUARANTINE_COLUMNS
            if c not in ("exchange", "timeframe", "source_ref")
        )
        connection.exec_driver_sql(
            f"INSERT INTO ohlc_quarantine ({', '.join(QUARANTINE_COLUMNS)}) "
            f"SELECT {', '.join(QUARANTINE_COLUMNS)} FROM staged_quarantine "
            f"ON CONFLICT ({key}) DO UPDATE SET {assignments}"
        )
    finally:
        drop_staged(connection, "staged_quarantine")
    return len(frame)


def read_bars(
    connection: Connection, timeframe: str, table: str = "raw_ohlc", since: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Bars of `timeframe` from `table` (raw_ohlc or a resampled dbt model; resampled buckets only
    when complete and closed), prices and volume as float64."""
    import pandas as pd

    from crypto_assets.warehouse.frames import read_frame

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
