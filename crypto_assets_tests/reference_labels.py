"""The labelling rules written the plain way, bar by bar: the yardstick the vectorized labeller is
tested (and benchmarked) against."""

from __future__ import annotations

import pandas as pd


def reference_triple_barrier(
    ts, high, low, close, entries, take_profit, stop_loss, *, horizon_bars, bar_seconds
):
    """The documented rules, bar by bar. Returns (entry, exit, outcome, exit_price) lists."""
    rows = []
    newest = ts[-1]
    for k, e in enumerate(entries):
        limit = ts[e] + horizon_bars * bar_seconds
        if limit > newest:
            continue  # open: not labelled yet
        exit_at, outcome, price = e, 2, close[e]
        j = e + 1
        while j < len(ts) and ts[j] <= limit:
            exit_at, price = j, close[j]
            if low[j] <= stop_loss[k]:  # checked first: a double touch is a stop loss
                outcome, price = 1, stop_loss[k]
                break
            if high[j] >= take_profit[k]:
                outcome, price = 0, take_profit[k]
                break
            j += 1
        rows.append((e, exit_at, outcome, price))
    return rows


def assert_labels_recheck(labels: pd.DataFrame, bars: pd.DataFrame) -> None:
    """Every row against the raw bars: the stated exit is the first barrier touch (a double touch
    is a stop loss), a timeout touched nothing up to its time limit, and the numbers agree."""
    import pytest  # here, not at the top: benchmarks import this module without the test framework

    for series, group in bars.groupby(["exchange", "symbol", "timeframe"]):
        group = group.sort_values("ts").set_index("ts")
        rows = labels[
            (labels["exchange"] == series[0])
            & (labels["symbol"] == series[1])
            & (labels["timeframe"] == series[2])
        ]
        assert rows["time_limit_ts"].max() <= group.index.max()
        for row in rows.itertuples():
            assert group.at[row.entry_ts, "close"] == row.entry_price
            after = group[(group.index > row.entry_ts) & (group.index <= row.time_limit_ts)]
            before_exit = after[after.index < row.exit_ts]
            assert not (
                (before_exit["high"] >= row.take_profit_price) | (before_exit["low"] <= row.stop_loss_price)
            ).any()
            assert row.bars_to_exit == len(before_exit) + (row.exit_ts > row.entry_ts)
            if row.outcome == "timeout":
                assert row.exit_ts == (after.index.max() if len(after) else row.entry_ts)
                assert row.realized_return == pytest.approx(
                    group.at[row.exit_ts, "close"] / row.entry_price - 1
                )
                assert row.label == 0
                continue
            bar = group.loc[row.exit_ts]
            if row.outcome == "stop_loss":
                assert bar["low"] <= row.stop_loss_price
                assert row.realized_return == pytest.approx(row.stop_loss_price / row.entry_price - 1)
                assert row.label == 0
            else:
                assert bar["high"] >= row.take_profit_price and bar["low"] > row.stop_loss_price
                assert row.realized_return == pytest.approx(row.take_profit_price / row.entry_price - 1)
                assert row.label == 1
