"""The triple-barrier labeller on numpy arrays: pure computation, no Dagster, no warehouse.

An entry is taken at the close of bar e. From the next bar on, the first bar whose high reaches
the take-profit price or whose low reaches the stop-loss price ends the trade; if neither happens
by the time limit the trade times out at the close of the last bar inside the limit.

- Same-bar double touch: when one bar reaches both barriers the order inside the bar is unknown,
  so it counts as a stop loss (the conservative reading).
- The time limit is measured in time, not bars: entry ts + horizon_bars x timeframe (the open
  time of the last bar that may still exit). A gap (missing bars) therefore shortens the trade
  in bars, never stretches it in time; bars_to_exit counts bars present in the data.
- A trade whose limit lies after the newest bar of its series is open: not labelled (a later run
  labels it), so a closed label never changes when more bars arrive.
- Exits are at the barrier price (no slippage, even when a bar gaps through it); a timeout exits
  at the close of its exit bar. If a gap leaves no bar inside the limit, the exit is the entry bar
  itself (timeout, 0 bars, return 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TAKE_PROFIT, STOP_LOSS, TIMEOUT = "take_profit", "stop_loss", "timeout"
OUTCOME_NAMES = np.array([TAKE_PROFIT, STOP_LOSS, TIMEOUT])


@dataclass
class BarrierResult:
    """One element per closed entry (open entries are dropped); `entry` indexes the input bars."""

    entry: np.ndarray  # int64 index of the entry bar
    exit: np.ndarray  # int64 index of the exit bar
    outcome: np.ndarray  # int8: 0 take profit, 1 stop loss, 2 timeout
    exit_price: np.ndarray  # float64

    @property
    def outcome_names(self) -> np.ndarray:
        return OUTCOME_NAMES[self.outcome]


def triple_barrier(
    ts: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    entries: np.ndarray,
    take_profit: np.ndarray,
    stop_loss: np.ndarray,
    *,
    horizon_bars: int,
    bar_seconds: int,
) -> BarrierResult:
    """Label `entries` (increasing bar indices of one series whose `ts` are int64 epoch seconds,
    strictly increasing) with barriers `take_profit` / `stop_loss` (one price per entry)."""
    entries = np.asarray(entries, dtype=np.int64)
    n = len(ts)
    limit_ts = ts[entries] + horizon_bars * bar_seconds
    closed = limit_ts <= (ts[-1] if n else np.iinfo(np.int64).min)
    entries, take_profit, stop_loss, limit_ts = (
        entries[closed], take_profit[closed], stop_loss[closed], limit_ts[closed]
    )  # fmt: skip
    # last bar index inside each entry's time limit; at most horizon_bars bars after the entry
    last = np.searchsorted(ts, limit_ts, side="right") - 1
    exit_index = last.copy()
    outcome = np.full(len(entries), 2, dtype=np.int8)
    if n > 1 and horizon_bars > 0:
        _first_touch(high, low, entries, take_profit, stop_loss, last, horizon_bars, exit_index, outcome)
    exit_price = np.where(
        outcome == 0, take_profit, np.where(outcome == 1, stop_loss, close[exit_index] if n else np.nan)
    )
    return BarrierResult(entry=entries, exit=exit_index, outcome=outcome, exit_price=exit_price)


def _first_touch(high, low, entries, take_profit, stop_loss, last, horizon_bars, exit_index, outcome) -> None:
    """Fill exit_index / outcome of the entries whose barrier is touched inside their limit.

    Vectorized over all entries at once: sparse tables of rolling max(high) / min(low) over 2^k
    bars, and binary lifting from the bar after each entry (jump 2^k bars while the block stays
    short of the barrier) find each entry's first touch in log2(horizon) steps.
    """
    start = entries + 1
    levels = max(1, int(horizon_bars).bit_length())  # 2^levels - 1 >= horizon_bars
    first_tp = _first_reach(_sparse_table(high, np.maximum, levels), start, last, take_profit, above=True)
    first_sl = _first_reach(_sparse_table(low, np.minimum, levels), start, last, stop_loss, above=False)
    hit_tp, hit_sl = first_tp <= last, first_sl <= last
    # a bar touching both barriers (first_sl == first_tp) counts as a stop loss
    stopped = hit_sl & (~hit_tp | (first_sl <= first_tp))
    profit = hit_tp & ~stopped
    exit_index[:] = np.where(stopped, first_sl, np.where(profit, first_tp, last))
    outcome[:] = np.where(stopped, 1, np.where(profit, 0, 2))


def _sparse_table(values: np.ndarray, combine, levels: int) -> list[np.ndarray]:
    """table[k][i] = combine of values[i : i + 2^k] (for i <= len - 2^k)."""
    table = [values]
    for k in range(1, levels):
        half = 1 << (k - 1)
        previous = table[-1]
        if len(previous) <= half:
            break
        table.append(combine(previous[:-half], previous[half:]))
    return table


def _first_reach(table, start, last, threshold, *, above: bool) -> np.ndarray:
    """Per entry, the first index in [start, last] whose value reaches `threshold` (>= when
    `above`, else <=); last + 1 when none does."""
    position = start.copy()
    for k in range(len(table) - 1, -1, -1):
        size = 1 << k
        level = table[k]
        fits = position + size - 1 <= last
        block = level[np.minimum(position, len(level) - 1)]
        short = block < threshold if above else block > threshold
        position = np.where(fits & short, position + size, position)
    return position
