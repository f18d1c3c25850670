"""Entries and barriers of the three strategies, and label rows: pure computation on bar frames.

Rolling windows come from TA-Lib, called once per series on its whole arrays. Every entry rule
uses bars <= the entry bar only; the look-ahead is the barrier labeller's alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crypto_assets.features.indicators import series_bounds
from crypto_assets.run_config import setting

if TYPE_CHECKING:  # numpy and pandas load with the first labelling, not with the code location
    import numpy as np
    import pandas as pd

LABEL_COLUMNS = [
    "strategy", "exchange", "symbol", "timeframe", "entry_ts", "entry_price", "take_profit_price",
    "stop_loss_price", "time_limit_ts", "exit_ts", "outcome", "label", "bars_to_exit", "realized_return",
]  # fmt: skip
LABEL_KEY = ["strategy", "exchange", "symbol", "timeframe", "entry_ts"]


@dataclass(frozen=True)
class Barriers:
    """Entry bar indices of one series and their take-profit / stop-loss prices."""

    entries: np.ndarray
    take_profit: np.ndarray
    stop_loss: np.ndarray


_HORIZON = "Time limit in base bars, measured in time: entry ts + horizon_bars x timeframe."


@dataclass(frozen=True)
class DcaParams:
    lookback_bars: int = setting(96, "Bars of the rolling high.")
    drop_pct: float = setting(5.0, "Entry when close is this % below the rolling high.")
    take_profit_pct: float = setting(3.0, "Take profit, % above entry.")
    stop_loss_pct: float = setting(5.0, "Stop loss, % below entry.")
    horizon_bars: int = setting(192, _HORIZON)


@dataclass(frozen=True)
class SwingParams:
    lookback_bars: int = setting(48, "Bars of the prior high the close must break.")
    volume_lookback_bars: int = setting(48, "Bars of the volume median the volume must exceed.")
    take_profit_pct: float = setting(4.0, "Take profit, % above entry.")
    stop_loss_pct: float = setting(2.0, "Stop loss, % below entry.")
    horizon_bars: int = setting(96, _HORIZON)


@dataclass(frozen=True)
class ChannelParams:
    lookback_bars: int = setting(96, "Bars of the channel (highest high, lowest low).")
    band_fraction: float = setting(0.2, "Height of the bottom (entry) and top (take profit) bands.")
    adx_period: int = setting(14, "ADX period (trend strength).")
    max_adx: float = setting(20.0, "Ranging, so entries allowed, while ADX is below this.")
    stop_buffer_pct: float = setting(0.5, "Stop loss, % below the channel low.")
    horizon_bars: int = setting(96, _HORIZON)


def _rolling_max(values: np.ndarray, window: int) -> np.ndarray:
    import talib

    return talib.MAX(values, window)


def _rolling_min(values: np.ndarray, window: int) -> np.ndarray:
    import talib

    return talib.MIN(values, window)


def _previous(values: np.ndarray) -> np.ndarray:
    import numpy as np

    out = np.full_like(values, np.nan)
    out[1:] = values[:-1]
    return out


def dca_barriers(high, low, close, volume, p: DcaParams) -> Barriers:
    """Buy the dip: close is at least drop_pct below the highest high of the last lookback_bars
    bars (this one included)."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        entries = np.flatnonzero(close <= _rolling_max(high, p.lookback_bars) * (1 - p.drop_pct / 100))
    price = close[entries]
    return Barriers(entries, price * (1 + p.take_profit_pct / 100), price * (1 - p.stop_loss_pct / 100))


def swing_barriers(high, low, close, volume, p: SwingParams) -> Barriers:
    """Breakout: close above the highest high of the previous lookback_bars bars, on volume above
    the median volume of the previous volume_lookback_bars bars."""
    import numpy as np
    import pandas as pd

    prior_high = _previous(_rolling_max(high, p.lookback_bars))
    median = _previous(
        pd.Series(volume)
        .rolling(p.volume_lookback_bars, min_periods=p.volume_lookback_bars)
        .median()
        .to_numpy()
    )
    with np.errstate(invalid="ignore"):
        entries = np.flatnonzero((close > prior_high) & (volume > median))
    price = close[entries]
    return Barriers(entries, price * (1 + p.take_profit_pct / 100), price * (1 - p.stop_loss_pct / 100))


def channel_barriers(high, low, close, volume, p: ChannelParams) -> Barriers:
    """Range: close in the bottom band_fraction of the lookback_bars channel (highest high, lowest
    low, this bar included) while ADX(adx_period) < max_adx (no trend). Take profit at the top
    band, stop loss stop_buffer_pct below the channel's low."""
    import numpy as np
    import talib

    top = _rolling_max(high, p.lookback_bars)
    bottom = _rolling_min(low, p.lookback_bars)
    adx = talib.ADX(high, low, close, p.adx_period)
    width = top - bottom
    with np.errstate(invalid="ignore"):
        ok = (width > 0) & (close <= bottom + p.band_fraction * width) & (adx < p.max_adx)
    entries = np.flatnonzero(ok)
    take_profit = top[entries] - p.band_fraction * width[entries]
    stop_loss = bottom[entries] * (1 - p.stop_buffer_pct / 100)
    return Barriers(entries, take_profit, stop_loss)


STRATEGIES = {"dca": dca_barriers, "swing": swing_barriers, "channel": channel_barriers}


def label_bars(strategy: str, bars: pd.DataFrame, params, bar_seconds: int) -> pd.DataFrame:
    """LABEL_COLUMNS rows of the closed entries of `strategy` in `bars` (exchange, symbol,
    timeframe, ts, open, high, low, close, volume; one or many series)."""
    import numpy as np
    import pandas as pd

    from crypto_assets.labels.barrier import OUTCOME_NAMES, triple_barrier

    rule = STRATEGIES[strategy]
    frame = bars.sort_values(["exchange", "symbol", "timeframe", "ts"], kind="stable").reset_index(drop=True)
    ts_all = pd.to_datetime(frame["ts"], utc=True)
    seconds = ts_all.dt.as_unit("s").astype("int64").to_numpy()
    arrays = {c: frame[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close", "volume")}
    parts = []
    for start, end in series_bounds(frame):
        a = {c: np.ascontiguousarray(v[start:end]) for c, v in arrays.items()}
        ts = seconds[start:end]
        barriers = rule(a["high"], a["low"], a["close"], a["volume"], params)
        result = triple_barrier(
            ts, a["high"], a["low"], a["close"], barriers.entries, barriers.take_profit, barriers.stop_loss,
            horizon_bars=params.horizon_bars, bar_seconds=bar_seconds,
        )  # fmt: skip
        keep = np.isin(barriers.entries, result.entry)
        entry_price = a["close"][result.entry]
        parts.append(
            pd.DataFrame(
                {
                    "strategy": strategy,
                    "exchange": frame.at[start, "exchange"],
                    "symbol": frame.at[start, "symbol"],
                    "timeframe": frame.at[start, "timeframe"],
                    "entry_ts": ts_all.iloc[start + result.entry].array,
                    "entry_price": entry_price,
                    "take_profit_price": barriers.take_profit[keep],
                    "stop_loss_price": barriers.stop_loss[keep],
                    "time_limit_ts": pd.to_datetime(
                        ts[result.entry] + params.horizon_bars * bar_seconds, unit="s", utc=True
                    ).array,
                    "exit_ts": ts_all.iloc[start + result.exit].array,
                    "outcome": OUTCOME_NAMES[result.outcome],
                    "label": (result.outcome == 0).astype(np.int16),
                    "bars_to_exit": (result.exit - result.entry).astype(np.int32),
                    "realized_return": result.exit_price / entry_price - 1.0,
                }
            )
        )
    if not parts:
        return pd.DataFrame({c: [] for c in LABEL_COLUMNS})
    return pd.concat(parts, ignore_index=True)[LABEL_COLUMNS]
