"""Technical indicators on a frame of bars: pure computation, no Dagster, no warehouse.

Every feature at bar t uses only bars <= t of the same series (TA-Lib's indicators and trailing
rolling windows are causal). Series are (exchange, symbol, timeframe); the library is called once
per series on its whole numpy arrays, never per bar.

Warm-up: `bar_number` counts the bars of the series before this one; rows with
`bar_number < WARMUP_BARS` have `is_warmup` true. Values the library cannot compute yet (fewer bars
than an indicator's window) are NaN, never filled; in later warm-up rows the recursive indicators
(RSI, MACD, ATR, ADX, EMA) still depend noticeably on where the series started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and pandas load on first computation, not with the code location
    import numpy as np
    import pandas as pd

SERIES = ["exchange", "symbol", "timeframe"]

RETURN_HORIZONS = (1, 4, 16, 48)
RSI_PERIOD = 14
MACD_PERIODS = (12, 26, 9)
BB_PERIOD, BB_WIDTH = 20, 2.0
ATR_PERIOD = 14
ADX_PERIOD = 14
WINDOW = 48  # realized volatility, volume z-score and median, SMA, Donchian channel, rolling high
EMA_PERIOD = 20
VOLUME_ANOMALY_RATIO = 3.0
#: rows with fewer bars of history than this are marked `is_warmup`
WARMUP_BARS = 100
#: an incremental run recomputes this many stored bars before the newest one, so the recursive
#: indicators (whose memory decays geometrically) reach float32 agreement with a full recompute
OVERLAP_BARS = 500

FLOAT_FEATURES = [
    *(f"ret_{h}" for h in RETURN_HORIZONS),
    "rsi_14", "macd", "macd_signal", "macd_hist", "bb_pct_b", "bb_bandwidth",
    "atr_14", "atr_rel", "adx_14", "realized_vol_48", "volume_z_48", "volume_median_ratio",
    "dist_sma_48", "dist_ema_20", "donchian_pos_48", "donchian_width_48", "drawdown_48",
]  # fmt: skip
FEATURE_COLUMNS = [
    *SERIES, "ts", "bar_number", "is_warmup", *FLOAT_FEATURES,
    "volume_anomaly", "hour_of_day", "day_of_week",
]  # fmt: skip


@dataclass(frozen=True)
class SeriesArrays:
    """One series' bars as contiguous float64 arrays (what TA-Lib takes)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def series_bounds(frame: pd.DataFrame) -> list[tuple[int, int]]:
    """[start, end) row ranges of each series in `frame`, which is sorted by SERIES + ts."""
    return _bounds(frame.groupby(SERIES, sort=False).ngroup().to_numpy())


def _sorted_by_series(bars: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """`bars` ordered by series then ts (untouched when already so), and each row's series code."""
    import numpy as np
    import pandas as pd

    codes = bars.groupby(SERIES, sort=True).ngroup().to_numpy()
    ts = pd.DatetimeIndex(pd.to_datetime(bars["ts"], utc=True)).asi8
    order = np.lexsort((ts, codes))
    if np.array_equal(order, np.arange(len(order))):
        return bars.reset_index(drop=True), codes
    return bars.take(order).reset_index(drop=True), codes[order]


def _bounds(codes: np.ndarray) -> list[tuple[int, int]]:
    import numpy as np

    if len(codes) == 0:
        return []
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(codes)]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def raw_indicator_calls(a: SeriesArrays) -> dict[str, np.ndarray]:
    """The indicator-library calls of one series, float64, nothing else (the benchmark's yardstick)."""
    import numpy as np
    import pandas as pd
    import talib

    out: dict[str, np.ndarray] = {}
    out["rsi_14"] = talib.RSI(a.close, RSI_PERIOD)
    out["macd"], out["macd_signal"], out["macd_hist"] = talib.MACD(a.close, *MACD_PERIODS)
    out["bb_upper"], out["bb_middle"], out["bb_lower"] = talib.BBANDS(a.close, BB_PERIOD, BB_WIDTH, BB_WIDTH)
    out["atr_14"] = talib.ATR(a.high, a.low, a.close, ATR_PERIOD)
    out["adx_14"] = talib.ADX(a.high, a.low, a.close, ADX_PERIOD)
    out["sma_48"] = talib.SMA(a.close, WINDOW)
    out["ema_20"] = talib.EMA(a.close, EMA_PERIOD)
    out["max_high_48"] = talib.MAX(a.high, WINDOW)
    out["min_low_48"] = talib.MIN(a.low, WINDOW)
    log_close = np.log(a.close)
    log_return = np.full_like(log_close, np.nan)
    log_return[1:] = np.diff(log_close)
    out["realized_vol_48"] = talib.STDDEV(log_return, WINDOW, 1.0)
    out["volume_sma_48"] = talib.SMA(a.volume, WINDOW)
    out["volume_std_48"] = talib.STDDEV(a.volume, WINDOW, 1.0)
    out["volume_median_48"] = pd.Series(a.volume).rolling(WINDOW, min_periods=WINDOW).median().to_numpy()
    return out


def _series_features(a: SeriesArrays) -> dict[str, np.ndarray]:
    import numpy as np

    raw = raw_indicator_calls(a)
    close = a.close
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {f"ret_{h}": _pct_change(close, h) for h in RETURN_HORIZONS}
        out["rsi_14"] = raw["rsi_14"]
        out["macd"], out["macd_signal"], out["macd_hist"] = raw["macd"], raw["macd_signal"], raw["macd_hist"]
        band = raw["bb_upper"] - raw["bb_lower"]
        out["bb_pct_b"] = (close - raw["bb_lower"]) / band
        out["bb_bandwidth"] = band / raw["bb_middle"]
        out["atr_14"] = raw["atr_14"]
        out["atr_rel"] = raw["atr_14"] / close
        out["adx_14"] = raw["adx_14"]
        out["realized_vol_48"] = raw["realized_vol_48"]
        out["volume_z_48"] = (a.volume - raw["volume_sma_48"]) / raw["volume_std_48"]
        out["volume_median_ratio"] = a.volume / raw["volume_median_48"]
        out["dist_sma_48"] = close / raw["sma_48"] - 1.0
        out["dist_ema_20"] = close / raw["ema_20"] - 1.0
        width = raw["max_high_48"] - raw["min_low_48"]
        out["donchian_pos_48"] = (close - raw["min_low_48"]) / width
        out["donchian_width_48"] = width / close
        out["drawdown_48"] = close / raw["max_high_48"] - 1.0
    # a flat channel or constant volume gives 0/0: no information, not a guess
    for values in out.values():
        values[~np.isfinite(values)] = np.nan
    out["volume_anomaly"] = a.volume >= VOLUME_ANOMALY_RATIO * raw["volume_median_48"]
    return out


def _pct_change(close: np.ndarray, horizon: int) -> np.ndarray:
    import numpy as np

    out = np.full_like(close, np.nan)
    if len(close) > horizon:
        out[horizon:] = close[horizon:] / close[:-horizon] - 1.0
    return out


def compute_features(bars: pd.DataFrame, first_bar_number: dict[tuple, int] | None = None) -> pd.DataFrame:
    """One row of FEATURE_COLUMNS per bar of `bars` (BAR_COLUMNS, any order, unique keys).

    `first_bar_number` gives, per series key (exchange, symbol, timeframe), the bar number of its
    first bar in `bars` when `bars` starts later than the series does (incremental runs); 0 otherwise.
    Floats are float32 (the indicators are computed in float64 and rounded once when stored).
    """
    import numpy as np
    import pandas as pd

    frame, codes = _sorted_by_series(bars)
    n = len(frame)
    # every row belongs to a series, so every element is written below
    columns = {name: np.empty(n, dtype=np.float32) for name in FLOAT_FEATURES}
    anomaly = np.zeros(n, dtype=bool)
    bar_number = np.zeros(n, dtype=np.int64)
    values = {c: frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")}
    for start, end in _bounds(codes):
        arrays = SeriesArrays(**{c: np.ascontiguousarray(v[start:end]) for c, v in values.items()})
        for name, series_values in _series_features(arrays).items():
            if name == "volume_anomaly":
                anomaly[start:end] = series_values
            else:
                columns[name][start:end] = series_values
        key = tuple(frame[c].iat[start] for c in SERIES)
        offset = (first_bar_number or {}).get(key, 0)
        bar_number[start:end] = np.arange(offset, offset + end - start)
    ts = pd.to_datetime(frame["ts"], utc=True)
    result = frame[SERIES].copy()
    result["ts"] = ts
    result["bar_number"] = bar_number
    result["is_warmup"] = bar_number < WARMUP_BARS
    for name in FLOAT_FEATURES:
        result[name] = columns[name]
    result["volume_anomaly"] = anomaly
    result["hour_of_day"] = ts.dt.hour.to_numpy(dtype=np.int16)
    result["day_of_week"] = ts.dt.dayofweek.to_numpy(dtype=np.int16)
    return result[FEATURE_COLUMNS]
