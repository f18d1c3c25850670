"""Walk-forward folds by time, purged and embargoed, over a panel of many symbols.

Rows are labelled trades sorted by entry time. Each test fold is a block of consecutive entries at
the end of the history; its model trains only on entries before it (expanding window). A trade's
label is known over [entry_ts, exit_ts + one bar) (half-open: the exit bar is included), so:

- purge: a training row whose label window overlaps the test fold's, which starts at the fold's
  first *entry*, is dropped (purgedcv, from per-row label end times, not row counts: row counts
  are wrong for a panel where many symbols share a timestamp);
- embargo: a gap of one label horizon more: a training row must have ended one horizon before the
  test fold's first entry. Every training row precedes its fold here, so the post-test embargo of
  k-fold schemes has nothing to remove; the gap is where it matters for walk-forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class TooFewRows(ValueError):
    """Too few rows for the folds asked for (the training skips, saying so)."""


@dataclass(frozen=True)
class Fold:
    number: int  # 0 is the oldest test fold
    train: np.ndarray  # row positions
    test: np.ndarray


def walk_forward_folds(
    entry_ts: pd.Series,
    exit_ts: pd.Series,
    *,
    n_folds: int,
    test_fraction: float,
    bar: timedelta,
    embargo: timedelta,
) -> list[Fold]:
    """`n_folds` test folds of equal size tiling the last `test_fraction` of the rows (sorted by
    `entry_ts`), each with its purged and embargoed training rows."""
    import numpy as np
    import pandas as pd
    from purgedcv import WalkForwardSplit

    n = len(entry_ts)
    test_size = int(n * test_fraction) // n_folds
    if test_size < 1:
        raise TooFewRows(f"{n} rows cannot make {n_folds} test folds of {test_fraction:.0%} of the rows")
    entries = pd.Series(pd.to_datetime(entry_ts, utc=True)).reset_index(drop=True)
    label_ends = pd.Series(pd.to_datetime(exit_ts, utc=True)).reset_index(drop=True) + bar
    splitter = WalkForwardSplit(
        n_splits=n_folds,
        test_size=test_size,
        prediction_times=entries,
        evaluation_times=label_ends,
        purge_horizon=pd.Timedelta(embargo),
        embargo=pd.Timedelta(embargo),
    )
    return [
        Fold(number, np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64))
        for number, (train, test) in enumerate(splitter.split(np.empty((n, 0))))
    ]
