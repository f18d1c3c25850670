"""Load a window of candles: fetch, validate, then write each UTC day in its own transaction.

A run killed mid-way therefore leaves every day either as it was or fully written, and a
re-run converges to the same table (writes are idempotent upserts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from crypto_assets.ingestion.sources import CandleSource
from crypto_assets.ingestion.validation import validate
from crypto_assets.market import Timeframe
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.bulk import to_arrow
from crypto_assets.warehouse.candles import WriteCounts, stored_days, upsert_candles, upsert_quarantine
from crypto_assets.warehouse.schema import KEY_COLUMNS, VALUE_COLUMNS


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
    on_day: Callable[[str, WriteCounts], None] | None = None,
) -> LoadReport:
    """Fetch [start, end) of `symbols` from `source` and upsert it, one transaction per day."""
    batch = source.fetch(symbols, timeframe, start, end)
    frame = batch.frame
    # Rows of configured symbols that this run was not asked for are not input at all.
    not_requested = set(known_symbols) - set(symbols)
    if not_requested:
        frame = frame[~frame["symbol"].isin(list(not_requested))]
    checked = validate(frame, timeframe, known_symbols, now)

    candles = checked.candles.assign(exchange=source.exchange, timeframe=timeframe.name)
    quarantine = checked.quarantine.assign(exchange=source.exchange, timeframe=timeframe.name)
    report = LoadReport(rows_in=checked.rows_in, merged=checked.merged, failures=dict(batch.failures))

    days = _days(start, end)
    # one Arrow table ordered by day (stable: symbol, ts order kept inside a day), sliced per day
    candle_day = candles["ts"].dt.floor("D").dt.tz_convert(None).to_numpy()
    order = np.argsort(candle_day, kind="stable")
    candle_day = candle_day[order]
    table = to_arrow(candles[KEY_COLUMNS + VALUE_COLUMNS].iloc[order])
    day_values = np.array([d.to_datetime64() for d in days], dtype=candle_day.dtype)
    lows = np.searchsorted(candle_day, day_values, side="left")
    highs = np.searchsorted(candle_day, day_values, side="right")
    quarantine_day = quarantine["ts"].dt.floor("D")
    with warehouse.session() as connection:
        with connection.begin():
            stored = stored_days(connection, source.exchange, timeframe.name, list(symbols), start, end)
        for index, day in enumerate(days):
            day_rows = table.slice(lows[index], highs[index] - lows[index])
            # rows without a readable timestamp belong to no day: write them with the first
            day_quarantine = quarantine[
                (quarantine_day == day) | (quarantine_day.isna() if index == 0 else False)
            ]
            with connection.begin():
                counts = upsert_candles(connection, day_rows, nothing_stored=day not in stored)
                counts.quarantined = upsert_quarantine(connection, day_quarantine, run_id)
            report.counts += counts
            if on_day:
                on_day(day.strftime("%Y-%m-%d"), counts)
        # quarantined rows dated outside the window (e.g. in the future) are kept as well
        outside = quarantine[quarantine_day.notna() & ~quarantine_day.isin(days)]
        if len(outside):
            with connection.begin():
                report.counts.quarantined += upsert_quarantine(connection, outside, run_id)

    report.per_symbol = _per_symbol(candles, quarantine, symbols)
    report.quarantine_reasons = quarantine["reason"].value_counts().to_dict() if len(quarantine) else {}
    return report


def _days(start: datetime, end: datetime) -> list[pd.Timestamp]:
    first = pd.Timestamp(start).floor("D")
    last = (pd.Timestamp(end) - timedelta(microseconds=1)).floor("D")
    return list(pd.date_range(first, last, freq="D"))


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
