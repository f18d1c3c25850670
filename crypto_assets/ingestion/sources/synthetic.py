"""An offline synthetic market, deterministic per (seed, symbol, timeframe, bar).

Structure, so models have something real to learn:
- a daily path: persistent volatility regimes (calm / stormy) and trend regimes (up, down,
  or a range whose returns mean-revert), anchored so each symbol trades near a familiar
  price on 2025-01-01;
- inside each day a Brownian bridge between that day's open and close, with a U-shaped
  intraday volatility and volume profile and occasional volume spikes.

Determinism whatever the range asked: the daily path is always drawn whole, and intraday
noise comes from one counter-addressed stream per (seed, symbol, timeframe). Uniform draws
consume exactly one 64-bit output each, so the draws for bar k of day d sit at a fixed
position of the stream and `PCG64.advance` jumps straight to them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.special import ndtri

from crypto_assets.errors import UserError
from crypto_assets.ingestion.sources.base import CandleSource, SourceBatch, empty_frame, make_frame
from crypto_assets.market import Timeframe

EPOCH = date(2015, 1, 1)
HORIZON_DAYS = 365 * 30  # the daily path covers 2015 .. 2044
ANCHOR = date(2025, 1, 1)  # each symbol opens this day at its base price
_BASE_PRICES = {"BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0, "ADA": 0.5, "DOT": 7.0, "DOGE": 0.1}
_DRAWS_PER_BAR = 6  # step, upper wick, lower wick, volume noise, spike chance, spike size
_COLUMNS = ["ts", "open", "high", "low", "close", "volume"]


def _stable_int(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@lru_cache(maxsize=1024)
def _daily_path(seed: int, symbol: str) -> tuple[np.ndarray, np.ndarray]:
    """Log-price at each day's open (HORIZON_DAYS + 1 values) and each day's volatility."""
    rng = np.random.default_rng(_stable_int(seed, symbol, "daily"))
    shocks = rng.standard_normal(HORIZON_DAYS)
    switches = rng.random((HORIZON_DAYS, 2))
    stormy = np.cumsum(switches[:, 0] < 0.03) % 2 == 1
    vol = np.where(stormy, 0.05, 0.02)
    # trend regime: redrawn on about 5% of days, held until the next redraw
    redraw = switches[:, 1] < 0.05
    redraw[0] = True
    choices = rng.integers(-1, 2, HORIZON_DAYS)
    trend = choices[np.maximum.accumulate(np.where(redraw, np.arange(HORIZON_DAYS), 0))]
    # ranges: returns with negative lag-1 correlation, so prices fall back after a move
    ranging = trend == 0
    noise = shocks - np.where(ranging, 0.6, 0.0) * np.concatenate([[0.0], shocks[:-1]])
    returns = 0.003 * trend + vol * noise
    log_open = np.concatenate([[0.0], np.cumsum(returns)])
    base = _BASE_PRICES.get(symbol.split("-")[0], 1.0 + _stable_int(symbol) % 500)
    log_open += np.log(base) - log_open[(ANCHOR - EPOCH).days]
    return log_open, vol


class SyntheticSource(CandleSource):
    exchange = "synthetic"

    def __init__(self, seed: int = 7, now: datetime | None = None) -> None:
        self.seed = seed
        self._now = now

    def fetch(
        self, symbols: Sequence[str], timeframe: Timeframe, start: datetime, end: datetime
    ) -> SourceBatch:
        now = self._now or datetime.now(UTC)
        end_ts = min(pd.Timestamp(end), pd.Timestamp(timeframe.floor(now)))  # closed bars only
        frames = []
        for symbol in symbols:
            bars = self.bars(symbol, timeframe, pd.Timestamp(start), end_ts)
            if len(bars):
                raw_ts = bars["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
                ref = f"synthetic {symbol} " + raw_ts
                frames.append(make_frame(symbol, bars["ts"], raw_ts, bars, ref))
        frame = pd.concat(frames, ignore_index=True) if frames else empty_frame()
        return SourceBatch(frame=frame)

    def bars(self, symbol: str, timeframe: Timeframe, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Bars with open time in [start, end): ts, open, high, low, close, volume."""
        if end <= start:
            return pd.DataFrame(columns=_COLUMNS)
        first_day = start.floor("D").date()
        last_day = (end - timedelta(microseconds=1)).floor("D").date()
        if first_day < EPOCH or (last_day - EPOCH).days >= HORIZON_DAYS:
            raise UserError(
                f"the synthetic market covers {EPOCH} to {EPOCH + timedelta(HORIZON_DAYS)}: "
                "choose dates inside it"
            )
        bars = self._days(symbol, timeframe, first_day, (last_day - first_day).days + 1)
        keep = (bars["ts"] >= start) & (bars["ts"] < end)
        return bars[keep].reset_index(drop=True)

    def _days(self, symbol: str, timeframe: Timeframe, first_day: date, count: int) -> pd.DataFrame:
        log_open_all, vol_all = _daily_path(self.seed, symbol)
        first = (first_day - EPOCH).days
        n = timeframe.bars_per_day
        stream = np.random.PCG64(_stable_int(self.seed, symbol, timeframe.name, "intraday"))
        stream.advance(first * n * _DRAWS_PER_BAR)
        draws = np.random.Generator(stream).random(count * n * _DRAWS_PER_BAR)
        draws = draws.reshape(count, n, _DRAWS_PER_BAR).clip(1e-12, 1 - 1e-12)

        day_open = log_open_all[first : first + count, None]
        day_move = log_open_all[first + 1 : first + count + 1, None] - day_open
        vol = vol_all[first : first + count, None]
        hours = (np.arange(n) * timeframe.seconds / 3600.0) % 24
        # U-shaped activity: busiest around the 15 UTC overlap, quietest around 03 UTC
        season = 1.0 + 0.6 * np.cos((hours - 15.0) / 24.0 * 2 * np.pi)
        step_sd = vol * season / np.sqrt(np.sum(season**2))
        walk = np.cumsum(ndtri(draws[..., 0]) * step_sd, axis=1)
        fraction = np.arange(1, n + 1) / n
        log_close = day_open + walk - fraction * walk[:, -1:] + fraction * day_move
        log_prev = np.concatenate([day_open, log_close[:, :-1]], axis=1)
        close, open_ = np.exp(log_close), np.exp(log_prev)
        high = np.maximum(open_, close) * np.exp(np.abs(ndtri(draws[..., 1])) * step_sd * 0.6)
        low = np.minimum(open_, close) * np.exp(-np.abs(ndtri(draws[..., 2])) * step_sd * 0.6)
        base_volume = 1e6 / np.exp(day_open) * timeframe.seconds / 900
        noise = np.exp(0.3 * ndtri(draws[..., 3]))
        spikes = np.where(draws[..., 4] < 0.01, 4 + 6 * draws[..., 5], 1.0)
        volume = base_volume * season * (vol / 0.02) * noise * spikes

        start = pd.Timestamp(first_day, tz="UTC")
        ts = start + pd.to_timedelta(np.arange(count * n) * timeframe.seconds, unit="s")
        values = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
        return pd.DataFrame({"ts": ts, **{k: v.ravel() for k, v in values.items()}})
