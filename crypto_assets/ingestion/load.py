"""Load a window of candles: fetch, validate, then write it day by day, each day all-or-nothing.

Days for which the warehouse holds no bar yet are appended together in one transaction (the
bulk path of a first load or a backfill); every day that already holds bars is upserted in a
transaction of its own. Either way a run killed mid-way leaves each day as it was or fully
written, and a re-run converges to the same table (writes are idempotent upserts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from crypto_assets.ingestion.sources import CandleSource
from crypto_assets.ingestion.validation import validate
from crypto_assets.market import Timeframe
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.bulk import to_arrow
from crypto_assets.warehouse.candles import WriteCounts, stored_days, upsert_candles, upsert_quarantine
from crypto_assets.warehouse.schema import KEY_COLUMNS, VALUE_COLUMNS, ensure_ingestion_tables

_DAY_NS = 86_400 * 10**9
#: day index of rows that belong to no day of the window (no timestamp, or dated outside it)
_NO_DAY = -1


@dataclass
class LoadReport:
    """What a load did, reconciled: rows_in = stored + quarantined + merged."""

    rows_in: int = 0
    merged: int = 0
    counts: WriteCounts = field(default_factory=WriteCounts)
    failures: dict[str, str] = field(default_factory=dict)
    per_symbol: pd.DataFrame = field(default_factory=pd.DataFrame)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        return self.counts.inserted + self.counts.updated + self.counts.unchanged

    def reconciles(self) -> bool:
        return self.rows_in == self.stored + self.counts.quarantined + self.merged


#: called after each committed transaction with the days it wrote ("2025-01-01" or a range) and counts
OnWrite = Callable[[str, WriteCounts], None]


def load_window(
    warehouse: Warehouse,
    source: CandleSource,
    *,
    symbols: Sequence[str],
    known_symbols: Sequence[str],
    timeframe: Timeframe,
    start: datetime,
    end: datetime,
    now: datetime,
    run_id: str | None = None,
    on_write: OnWrite | None = None,
) -> LoadReport:
    """Fetch [start, end) of `symbols` from `source` and store it, each UTC day all-or-nothing.
    The ingestion tables (raw_ohlc, ohlc_quarantine, ohlc_unfillable_gaps) are created here, by
    the writer that owns them, when missing."""
    with warehouse.begin() as connection:
        ensure_ingestion_tables(connection)
    batch = source.fetch(symbols, timeframe, start, end)
    frame = batch.frame
    # Rows of configured symbols that this run was not asked for are not input at all.
    not_requested = set(known_symbols) - set(symbols)
    if not_requested:
        frame = frame[~frame["symbol"].isin(list(not_requested))]
    checked = validate(frame, timeframe, known_symbols, now)
    report = LoadReport(rows_in=checked.rows_in, merged=checked.merged, failures=dict(batch.failures))

    days = _days(start, end)
    candles = _candle_table(checked.candles, source.exchange, timeframe.name)
    candle_day = _day_index(checked.candles["ts"], days)
    quarantine = checked.quarantine.assign(exchange=source.exchange, timeframe=timeframe.name)
    quarantine_day = _day_index(quarantine["ts"], days)

    if (candle_day == _NO_DAY).any():
        raise ValueError(f"{type(source).__name__} returned candles outside {start}..{end}")

    with warehouse.session() as connection:
        with connection.begin():
            stored = stored_days(connection, source.exchange, timeframe.name, list(symbols), start, end)
        for write in _plan_writes(days, stored, candles, candle_day, quarantine, quarantine_day):
            with connection.begin():
                counts = upsert_candles(connection, write.candles, nothing_stored=write.nothing_stored)
                counts.quarantined = upsert_quarantine(connection, write.quarantine, run_id)
            report.counts += counts
            if on_write and write.days:
                on_write(_describe_days(write.days), counts)

    report.per_symbol = _per_symbol(checked.candles, quarantine, symbols)
    report.quarantine_reasons = quarantine["reason"].value_counts().to_dict() if len(quarantine) else {}
    return report


@dataclass
class _Write:
    """One transaction: whole days of candles with their rejected rows."""

    days: list[pd.Timestamp]
    candles: pa.Table
    quarantine: pd.DataFrame
    nothing_stored: bool  # none of the days holds a bar yet: append instead of upsert


def _plan_writes(
    days: list[pd.Timestamp],
    stored: set[pd.Timestamp],
    candles: pa.Table,
    candle_day: np.ndarray,
    quarantine: pd.DataFrame,
    quarantine_day: np.ndarray,
) -> list[_Write]:
    """Days holding no bar yet go in one bulk append; each day holding bars is upserted on its own;
    rejected rows of no day in the window (no readable timestamp, dated in the future) come last.

    Candles are written in day order (stable, so a source's symbol/ts order holds within a day):
    DuckDB's zone maps then let a day's upsert skip the row groups of other days.
    """
    if np.any(candle_day[1:] < candle_day[:-1]):  # a one-day window is in order already
        order = np.argsort(candle_day, kind="stable")
        candles, candle_day = candles.take(pa.array(order)), candle_day[order]
    bounds = np.searchsorted(candle_day, np.arange(len(days) + 1))  # day i is rows bounds[i]:bounds[i+1]
    stored_index = [i for i, day in enumerate(days) if day in stored]
    new_index = np.setdiff1d(np.arange(len(days)), stored_index)
    writes = []
    if len(new_index):
        is_new = np.isin(candle_day, new_index)
        writes.append(
            _Write(
                [days[i] for i in new_index],
                candles if is_new.all() else candles.filter(pa.array(is_new)),
                quarantine[np.isin(quarantine_day, new_index)],
                nothing_stored=True,
            )
        )
    for i in stored_index:
        rows = candles.slice(bounds[i], bounds[i + 1] - bounds[i])
        writes.append(_Write([days[i]], rows, quarantine[quarantine_day == i], nothing_stored=False))
    elsewhere = quarantine[quarantine_day == _NO_DAY]
    if len(elsewhere):
        writes.append(_Write([], candles.slice(0, 0), elsewhere, nothing_stored=False))
    return writes


def _days(start: datetime, end: datetime) -> list[pd.Timestamp]:
    first = pd.Timestamp(start).floor("D")
    last = (pd.Timestamp(end) - timedelta(microseconds=1)).floor("D")
    return list(pd.date_range(first, last, freq="D"))


def _describe_days(days: list[pd.Timestamp]) -> str:
    if len(days) == 1:
        return f"{days[0]:%Y-%m-%d}"
    return f"{len(days)} days {days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d}"


def _day_index(ts: pd.Series, days: list[pd.Timestamp]) -> np.ndarray:
    """Position in `days` of each timestamp's UTC day; _NO_DAY for NaT or a day outside the window."""
    if not days:
        return np.full(len(ts), _NO_DAY, dtype=np.int64)
    nanos = ts.to_numpy(dtype="datetime64[ns]").view(np.int64)
    index = (nanos - days[0].value) // _DAY_NS
    outside = ts.isna().to_numpy() | (index < 0) | (index >= len(days))
    return np.where(outside, _NO_DAY, index)


def _candle_table(candles: pd.DataFrame, exchange: str, timeframe: str) -> pa.Table:
    """Validated candles as Arrow in the key + value column order, the constant key columns added."""
    table = to_arrow(candles[["symbol", "ts", *VALUE_COLUMNS]])
    constants = {"exchange": exchange, "timeframe": timeframe}
    columns = {
        name: pa.repeat(constants[name], len(table)) if name in constants else table[name]
        for name in KEY_COLUMNS + VALUE_COLUMNS
    }
    return pa.table(columns)


def _per_symbol(candles: pd.DataFrame, quarantine: pd.DataFrame, symbols: Sequence[str]) -> pd.DataFrame:
    stats = candles.groupby("symbol")["ts"].agg(["count", "min", "max"])
    quarantined = quarantine.groupby("symbol").size() if len(quarantine) else pd.Series(dtype=int)
    rows = []
    for symbol in list(symbols) + sorted(set(quarantined.index) - set(symbols)):
        has = symbol in stats.index
        rows.append(
            {
                "symbol": symbol,
                "stored": int(stats.loc[symbol, "count"]) if has else 0,
                "quarantined": int(quarantined.get(symbol, 0)),
                "min_ts": stats.loc[symbol, "min"].isoformat() if has else "",
                "max_ts": stats.loc[symbol, "max"].isoformat() if has else "",
            }
        )
    return pd.DataFrame(rows, columns=["symbol", "stored", "quarantined", "min_ts", "max_ts"])
