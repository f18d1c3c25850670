"""The vectorized triple-barrier labeller equals a plain loop over bars, on random series of
thousands of bars with same-bar double touches and gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crypto_assets.labels.barrier import triple_barrier
from crypto_assets.labels.strategies import ChannelParams, DcaParams, SwingParams, label_bars
from crypto_assets_tests.reference_labels import assert_labels_recheck, reference_triple_barrier


def random_series(n: int, seed: int, gap_fraction: float = 0.05):
    """A random walk in 15m bars with wide bars now and then (double touches) and missing bars."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    spread = np.abs(rng.normal(0, 0.003, n)) + np.where(rng.random(n) < 0.03, 0.05, 0.0)
    high = close * (1 + spread * rng.random(n))
    low = close * (1 - spread * rng.random(n))
    ts = np.arange(n, dtype=np.int64) * 900 + 1_735_689_600
    keep = rng.random(n) >= gap_fraction
    keep[[0, -1]] = True
    return ts[keep], high[keep], low[keep], close[keep], rng


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("horizon", [1, 7, 96])
def test_vectorized_labeller_equals_the_reference_loop(seed, horizon):
    ts, high, low, close, rng = random_series(6000, seed)
    entries = np.flatnonzero(rng.random(len(ts)) < 0.4)
    take_profit = close[entries] * (1 + rng.uniform(0.001, 0.03, len(entries)))
    stop_loss = close[entries] * (1 - rng.uniform(0.001, 0.03, len(entries)))
    args = (ts, high, low, close, entries, take_profit, stop_loss)
    fast = triple_barrier(*args, horizon_bars=horizon, bar_seconds=900)
    slow = reference_triple_barrier(*args, horizon_bars=horizon, bar_seconds=900)
    expected = np.array([r[:3] for r in slow], dtype=np.int64).reshape(-1, 3)
    assert len(fast.entry) == len(slow) > 0
    np.testing.assert_array_equal(fast.entry, expected[:, 0])
    np.testing.assert_array_equal(fast.exit, expected[:, 1])
    np.testing.assert_array_equal(fast.outcome, expected[:, 2])
    np.testing.assert_array_equal(fast.exit_price, np.array([r[3] for r in slow]))
    # the random data really holds the hard cases
    assert (np.diff(ts) > 900).sum() > 100  # gaps
    position = {e: k for k, e in enumerate(entries)}
    double = [
        r for r in slow
        if r[2] == 1 and high[r[1]] >= take_profit[position[r[0]]] and r[1] > r[0]
    ]  # fmt: skip
    assert double, "no same-bar double touch in the random data"
    if horizon > 1:
        assert {0, 1, 2} <= set(fast.outcome.tolist())


def test_open_entries_and_an_entry_whose_window_is_all_gap():
    ts = np.array([0, 900, 1800, 9000, 9900], dtype=np.int64)  # bars 3..7 missing after 1800
    high = np.array([10.0, 10.5, 10.2, 11.0, 12.0])
    low = np.array([9.5, 9.8, 9.9, 10.0, 9.0])
    close = np.array([10.0, 10.1, 10.0, 10.5, 11.0])
    entries = np.array([0, 2, 3])
    result = triple_barrier(
        ts,
        high,
        low,
        close,
        entries,
        close[entries] * 1.5,
        close[entries] * 0.5,
        horizon_bars=3,
        bar_seconds=900,
    )
    # entry 0: bars 1 and 2 inside its limit (2700), no touch: timeout at bar 2.
    # entry 2: limit 4500, no bar inside (gap): timeout at the entry bar itself.
    # entry 3: limit 11700 > newest 9900: open, not labelled.
    assert result.entry.tolist() == [0, 2]
    assert result.exit.tolist() == [2, 2]
    assert result.outcome_names.tolist() == ["timeout", "timeout"]
    assert result.exit_price.tolist() == [10.0, 10.0]


@pytest.mark.parametrize(
    "strategy,params",
    [
        ("dca", DcaParams(lookback_bars=48, drop_pct=2.0)),
        ("swing", SwingParams()),
        ("channel", ChannelParams(max_adx=30.0)),
    ],
)
def test_every_strategy_label_rechecks_against_the_raw_bars(strategy, params):
    ts, high, low, close, rng = random_series(5000, 11)
    bars = pd.DataFrame(
        {
            "exchange": "x", "symbol": "AAA-USD", "timeframe": "15m",
            "ts": pd.to_datetime(ts, unit="s", utc=True),
            "open": close, "high": high, "low": low, "close": close,
            "volume": rng.gamma(2.0, 10.0, len(ts)),
        }
    )  # fmt: skip
    labels = label_bars(strategy, bars, params, 900)
    assert len(labels) > 20
    assert labels["outcome"].nunique() >= 2
    assert_labels_recheck(labels, bars)
