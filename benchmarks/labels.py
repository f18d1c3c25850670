"""Labels benchmark: the vectorized triple-barrier labeller (crypto_assets.labels) against the plain
loop of the tests, on the same entries and barriers, in the same run.

    python benchmarks/labels.py [--symbols 90] [--days 180] [--reference-symbols 3] [--repeat 3]

Input: the features benchmark's random walk (90 symbols x 180 days of 15m bars by default).
Measured:
- throughput: `label_bars` of each strategy with its default parameters (DCA with drop_pct 2 so
  the random walk has entries) on the whole frame, median of --repeat runs -> bars/s;
- speed-up: `triple_barrier` against `reference_triple_barrier` (crypto_assets_tests/
  reference_labels.py, one Python step per entry and bar) on the first --reference-symbols series
  and every strategy's entries there (the loop is too slow for all 90); the exits must be equal.
  Target: >= 50x.

Targets are printed, not asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/labels.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import machine_facts, print_facts, print_table, report_row  # noqa: E402
from crypto_assets.labels.strategies import ChannelParams, DcaParams, SwingParams  # noqa: E402

TARGET = 50.0  # vectorized / loop
PARAMS = {"dca": DcaParams(drop_pct=2.0), "swing": SwingParams(), "channel": ChannelParams()}


def labeller_speedup(frame, arrays, reference_symbols: int) -> tuple[float, float, float, int]:
    """(loop seconds / vectorized seconds, loop seconds, vectorized seconds, entries) over the first
    `reference_symbols` series of `frame` (sorted by series; `arrays` its SeriesArrays)."""
    from crypto_assets.features.indicators import series_bounds
    from crypto_assets.labels.barrier import triple_barrier
    from crypto_assets.labels.strategies import STRATEGIES
    from crypto_assets_tests.reference_labels import reference_triple_barrier

    ref_time = vec_time = 0.0
    entries = 0
    for (start, end), a in list(zip(series_bounds(frame), arrays, strict=True))[:reference_symbols]:
        ts = frame["ts"].iloc[start:end].dt.as_unit("s").astype("int64").to_numpy()
        for strategy, rule in STRATEGIES.items():
            params = PARAMS[strategy]
            b = rule(a.high, a.low, a.close, a.volume, params)
            call = (ts, a.high, a.low, a.close, b.entries, b.take_profit, b.stop_loss)
            entries += len(b.entries)
            started = time.perf_counter()
            fast = triple_barrier(*call, horizon_bars=params.horizon_bars, bar_seconds=900)
            vec_time += time.perf_counter() - started
            started = time.perf_counter()
            slow = reference_triple_barrier(*call, horizon_bars=params.horizon_bars, bar_seconds=900)
            ref_time += time.perf_counter() - started
            if fast.exit.tolist() != [r[1] for r in slow]:
                raise SystemExit(f"{strategy}: the vectorized exits differ from the loop's")
    return ref_time / vec_time, ref_time, vec_time, entries


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from benchmarks.features import build_bars, median_time
    from crypto_assets.features.indicators import SeriesArrays, series_bounds
    from crypto_assets.labels.strategies import STRATEGIES, label_bars

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=90)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference-symbols", type=int, default=3)
    args = parser.parse_args(argv)

    bars = build_bars(args.symbols, args.days)
    frame = bars.sort_values(["exchange", "symbol", "timeframe", "ts"]).reset_index(drop=True)
    columns = ("open", "high", "low", "close", "volume")
    arrays = [
        SeriesArrays(*(np.ascontiguousarray(frame[c].to_numpy(np.float64)[s:e]) for c in columns))
        for s, e in series_bounds(frame)
    ]
    print_facts(
        "crypto_assets labels benchmark",
        machine_facts(
            [("input", f"{args.symbols} symbols x {args.days} days x 96 bars (15m) = {len(bars):,}")]
        ),
    )
    rows = []
    for strategy in STRATEGIES:
        samples, labels = median_time(lambda s=strategy: label_bars(s, bars, PARAMS[s], 900), args.repeat)
        rows.append([f"label_bars {strategy}", f"{len(labels):,}", f"{samples.median:.2f}",
                     f"{len(bars) / samples.median:,.0f}"])  # fmt: skip
    speedup, ref_time, vec_time, entries = labeller_speedup(frame, arrays, args.reference_symbols)
    print()
    print_table(rows, ["measurement", "labels", "median s", "bars/s"])
    met = speedup >= TARGET
    print(
        f"\nvectorized labeller vs the plain loop ({args.reference_symbols} series, {entries:,} entries): "
        f"loop {ref_time:.3f} s, vectorized {vec_time:.3f} s = {speedup:.1f}x "
        f"(target >= {TARGET:g}x): {'met' if met else 'MISSED'}"
    )
    report_row(
        "vectorized labeller / plain loop, same entries",
        f"{speedup:.1f}x ({entries:,} entries of {args.reference_symbols} series: loop {ref_time:.3f} s, "
        f"ours {vec_time:.3f} s)",
        f">= {TARGET:g}x",
        met,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
