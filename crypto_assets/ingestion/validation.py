"""Decide, before anything is keyed on it, which raw rows become candles and which are quarantined.

Every input row ends up in exactly one place: a candle, a merged exact duplicate of another
row, or the quarantine with its reason(s). `Validated.reconciles()` states that invariant.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from crypto_assets.ingestion.sources.base import PRICE_COLUMNS
from crypto_assets.market import Timeframe


@dataclass
class Validated:
    candles: pd.DataFrame  # symbol, ts, open..volume, source_ref: one row per (symbol, ts)
    quarantine: pd.DataFrame  # the input columns plus `reason`
    merged: int  # exact duplicates folded into another row
    rows_in: int

    def reconciles(self) -> bool:
        return self.rows_in == len(self.candles) + len(self.quarantine) + self.merged


def validate(
    frame: pd.DataFrame, timeframe: Timeframe, known_symbols: Collection[str], now: datetime
) -> Validated:
    """Split a source frame (the `sources.base` contract) into candles and quarantined rows."""
    frame = frame.reset_index(drop=True)
    bad = np.zeros(len(frame), dtype=bool)
    notes: list[tuple[np.ndarray, str | Callable[[pd.DataFrame], pd.Series]]] = []

    def flag(mask: pd.Series | np.ndarray, reason: str | Callable[[pd.DataFrame], pd.Series]) -> None:
        """Mark rows; a callable reason is called with the flagged rows only (most batches have none)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            bad[mask] = True
            notes.append((mask, reason))

    unknown = ~frame["symbol"].isin(list(known_symbols)).to_numpy(dtype=bool, na_value=False)
    flag(
        unknown,
        lambda rows: "unknown symbol " + rows["symbol"].astype(str) + ": add it to CRYPTO_ASSETS_SYMBOLS",
    )

    ts = frame["ts"]
    valid_ts = ts.notna().to_numpy()
    flag(~valid_ts, lambda rows: "unparseable timestamp " + rows["raw_timestamp"].astype(str).map(repr))
    for column in PRICE_COLUMNS:
        flag(frame[column].isna(), f"missing or non-numeric {column}")
    open_, high, low, close = (frame[c].to_numpy() for c in ("open", "high", "low", "close"))
    flag((open_ <= 0) | (high <= 0) | (low <= 0) | (close <= 0), "non-positive price")
    flag(high < np.fmax(open_, close), "high below max(open, close)")
    flag(low > np.fmin(open_, close), "low above min(open, close)")
    flag(frame["volume"].to_numpy() < 0, "negative volume")

    nanos = ts.to_numpy(dtype="datetime64[ns]").view("int64")
    off_grid = valid_ts & (nanos % (timeframe.seconds * 10**9) != 0)
    flag(off_grid, f"timestamp not on the {timeframe} grid")
    now_ts = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz="UTC")
    future = valid_ts & (nanos > now_ts.value)
    flag(future, "timestamp in the future")
    forming = valid_ts & ~future & (nanos + timeframe.seconds * 10**9 > now_ts.value)
    flag(forming, f"bar still forming (a {timeframe} bar closes after {now_ts:%Y-%m-%d %H:%M} UTC)")

    good = frame[~bad] if bad.any() else frame
    candles, conflicted, merged = _merge_duplicates(good)
    flag(frame.index.isin(conflicted.index), "conflicting values for the same bar")

    quarantine = frame[bad].copy()
    reasons = pd.Series("", index=quarantine.index, dtype=object)
    for mask, reason in notes:
        rows = mask[bad]
        if not rows.any():
            continue
        text = reason(quarantine[rows]).to_numpy(dtype=object) if callable(reason) else reason
        current = reasons[rows].to_numpy(dtype=object)
        reasons[rows] = np.where(current == "", text, current + "; " + text)
    quarantine["reason"] = reasons
    return Validated(candles=candles, quarantine=quarantine, merged=merged, rows_in=len(frame))


def _merge_duplicates(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Fold exact duplicates of a bar into one; keep no version of a bar given with different values."""
    key = ["symbol", "ts"]
    if _unique_when_sorted(rows):
        return rows.drop(columns=["raw_timestamp"]), rows.iloc[0:0], 0
    duplicated = rows.duplicated(key, keep=False)
    if not duplicated.any():
        return rows.drop(columns=["raw_timestamp"]), rows.iloc[0:0], 0
    dups = rows[duplicated]
    versions = dups.drop_duplicates(key + PRICE_COLUMNS).groupby(key, sort=False).size()
    conflicting_keys = versions[versions > 1].index
    is_conflict = pd.MultiIndex.from_frame(dups[key]).isin(conflicting_keys)
    conflicted = dups[is_conflict]
    kept = rows.drop(index=conflicted.index)
    deduped = kept.drop_duplicates(key, keep="first")
    merged = len(kept) - len(deduped)
    return deduped.drop(columns=["raw_timestamp"]), conflicted, merged


def _unique_when_sorted(rows: pd.DataFrame) -> bool:
    """True when rows come as sources usually give them, each symbol in one block with strictly
    rising timestamps: then no (symbol, ts) repeats, proven in one pass instead of a hash."""
    if len(rows) < 2:
        return True
    codes, uniques = pd.factorize(rows["symbol"])
    nanos = rows["ts"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    new_block = codes[1:] != codes[:-1]
    one_block_per_symbol = int(new_block.sum()) == len(uniques) - 1
    return one_block_per_symbol and bool(np.all(new_block | (nanos[1:] > nanos[:-1])))
