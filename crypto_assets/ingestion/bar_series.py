"""Gaps and outlier moves of stored bars, without Python work per bar.

The bars are ordered once by (exchange, symbol, ts) (`SortedBars`): series then follow each other,
so a step between neighbours is inside one series exactly where both have the same series code.
Only the arrays the checks use are reordered, never the frame (reordering 1.5M rows of ten columns
costs more than both checks); the key strings of the offending bars are looked up at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas and numpy load when a check runs, not with the code location
    import numpy as np
    import pandas as pd

OUTLIER_SIGMAS = 12.0  # a bar move this many robust standard deviations from the symbol's norm
MIN_MOVES = 20  # fewer moves than this give no robust norm to compare against
GAP_COLUMNS = ["exchange", "symbol", "after", "resumes", "missing_bars"]
OUTLIER_COLUMNS = ["exchange", "symbol", "ts", "move", "robust_z"]


def epoch_micros(ts: pd.Series) -> np.ndarray:
    """Bar times as epoch microseconds (int64)."""
    import pandas as pd

    return pd.DatetimeIndex(pd.to_datetime(ts, utc=True)).as_unit("us").asi8


def series_codes(candles: pd.DataFrame) -> np.ndarray:
    """A code per bar for its (exchange, symbol), ordered as the pairs are (lexically); a missing
    value (which the blocking suite reports) is a value of its own, ordered first."""
    exchange, symbol = (_sorted_codes(candles[column]) + 1 for column in ("exchange", "symbol"))
    return exchange * (int(symbol.max(initial=0)) + 1) + symbol


def _sorted_codes(column: pd.Series) -> np.ndarray:
    """Integer codes ordered like the values (-1 for a missing one); cheap for a categorical."""
    import numpy as np
    import pandas as pd

    if isinstance(column.dtype, pd.CategoricalDtype):
        rank = np.argsort(np.argsort(np.asarray(column.cat.categories, dtype=object)))
        codes = column.cat.codes.to_numpy()
        return np.where(codes < 0, -1, rank[np.maximum(codes, 0)]).astype(np.int64)
    return pd.factorize(column, sort=True)[0].astype(np.int64)


@dataclass(frozen=True)
class SortedBars:
    """`candles` seen in (exchange, symbol, ts) order."""

    candles: pd.DataFrame
    order: np.ndarray  # positions in `candles`, sorted
    codes: np.ndarray  # series code of each sorted bar (non-decreasing)
    micros: np.ndarray  # open time of each sorted bar, epoch microseconds

    @classmethod
    def of(cls, candles: pd.DataFrame) -> SortedBars:
        import numpy as np

        codes, micros = series_codes(candles), epoch_micros(candles["ts"])
        order = np.lexsort((micros, codes))
        return cls(candles, order, codes[order], micros[order])

    def same_series(self) -> np.ndarray:
        """For each step between sorted neighbours: whether both bars are of one series."""
        return self.codes[1:] == self.codes[:-1]

    def keys(self, column: str, rows: np.ndarray) -> list[str]:
        """`column` of the sorted bars at `rows`."""
        return [str(value) for value in self.candles[column].iloc[self.order[rows]]]


def find_gaps(candles: pd.DataFrame, timeframe_seconds: int, bars: SortedBars | None = None) -> pd.DataFrame:
    """Runs of missing bars between a symbol's first and last stored bar in the window."""
    import numpy as np
    import pandas as pd

    if len(candles) < 2:
        return pd.DataFrame(columns=GAP_COLUMNS)
    bars = SortedBars.of(candles) if bars is None else bars
    step = np.diff(bars.micros)
    bar = timeframe_seconds * 1_000_000
    gap = np.flatnonzero(bars.same_series() & (step > bar))
    return pd.DataFrame(
        {
            "exchange": bars.keys("exchange", gap + 1),
            "symbol": bars.keys("symbol", gap + 1),
            "after": _isoformat(bars.micros[gap]),
            "resumes": _isoformat(bars.micros[gap + 1]),
            "missing_bars": step[gap] // bar - 1,
        },
        columns=GAP_COLUMNS,
    )


def find_outlier_moves(
    candles: pd.DataFrame, sigmas: float = OUTLIER_SIGMAS, bars: SortedBars | None = None
) -> pd.DataFrame:
    """Bars whose close-to-close log move is `sigmas` robust deviations (MAD) from the symbol's median.

    One numpy pass per series over its slice of the sorted bars: the medians need each series'
    moves apart anyway, and slices keep every temporary array small (at 1.5M bars, whole-window
    temporaries cost more in fresh memory than the arithmetic)."""
    import numpy as np
    import pandas as pd

    if len(candles) < 2:
        return pd.DataFrame(columns=OUTLIER_COLUMNS)
    bars = SortedBars.of(candles) if bars is None else bars
    close = candles["close"].to_numpy(dtype=float)[bars.order]
    hits, scores = [], []
    bounds = np.r_[0, np.flatnonzero(~bars.same_series()) + 1, len(close)]
    for first, end in zip(bounds[:-1], bounds[1:], strict=True):
        with np.errstate(divide="ignore", invalid="ignore"):
            moves = np.diff(np.log(np.where(close[first:end] > 0, close[first:end], np.nan)))
        ends_on = np.flatnonzero(np.isfinite(moves))  # the bar (after `first`) each move ends on
        if len(ends_on) < MIN_MOVES:
            continue
        values = moves[ends_on]
        median = np.median(values)
        scale = 1.4826 * np.median(np.abs(values - median))
        if not scale > 0:
            continue
        z = (values - median) / scale
        hit = np.flatnonzero(np.abs(z) > sigmas)
        hits.append(first + 1 + ends_on[hit])
        scores.append(np.c_[values[hit], z[hit]])
    rows = np.concatenate(hits) if hits else np.array([], dtype=np.int64)
    found = np.concatenate(scores) if scores else np.empty((0, 2))
    return pd.DataFrame(
        {
            "exchange": bars.keys("exchange", rows),
            "symbol": bars.keys("symbol", rows),
            "ts": _isoformat(bars.micros[rows]),
            "move": found[:, 0],
            "robust_z": np.round(found[:, 1], 1),
        },
        columns=OUTLIER_COLUMNS,
    )


def _isoformat(micros: np.ndarray) -> list[str]:
    import pandas as pd

    return [ts.isoformat() for ts in pd.to_datetime(micros, unit="us", utc=True)]
