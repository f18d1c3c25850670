"""Idempotent writes of candles and quarantined rows, keyed on (exchange, symbol, timeframe, ts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.engine import Connection

from crypto_assets.warehouse.bulk import drop_staged, stage_frame
from crypto_assets.warehouse.schema import KEY_COLUMNS, VALUE_COLUMNS

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


def upsert_candles(connection: Connection, candles: pd.DataFrame) -> WriteCounts:
    """Insert new bars and update changed ones, in the caller's transaction.

    `candles` holds KEY_COLUMNS + VALUE_COLUMNS with unique keys (validation merged duplicates).
    """
    if candles.empty:
        return WriteCounts()
    frame = candles[KEY_COLUMNS + VALUE_COLUMNS].copy()
    frame["loaded_at"] = pd.Timestamp(datetime.now(UTC))
    stage_frame(connection, frame, "staged_ohlc", "raw_ohlc")
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
        inserted=int(inserted), updated=int(updated), unchanged=len(frame) - inserted - updated
    )


def upsert_quarantine(connection: Connection, rows: pd.DataFrame, run_id: str | None) -> int:
    """Keep rejected rows with their reason; the same source row is kept once, however often seen."""
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
