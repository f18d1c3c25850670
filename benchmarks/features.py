"""Features and labels benchmark: throughput of the pure computation at production size, the
overhead of our framing over the raw indicator-library calls, the vectorized triple-barrier
labeller against a plain loop, and peak memory.

    python benchmarks/features.py [--symbols 90] [--days 180] [--reference-symbols 3]
                                  [--warehouse [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]]

The default size is 90 symbols x 180 days of 15m bars = 1,555,200 base bars (a random walk built
with numpy, untimed).

What is measured (median of --repeat runs, wall clock)
------------------------------------------------------
- features: `compute_features` on the whole frame (sort, split per series, TA-Lib and rolling
  median per series, derived columns, float32 frame of 30 columns) -> rows/s;
- raw library calls: only `raw_indicator_calls` per series on arrays extracted beforehand (the
  same TA-Lib calls and pandas rolling median); ratio features / raw (target <= 3x);
- labels: `label_bars` of each strategy with its default parameters (DCA with drop_pct 2 so the
  random walk has entries) on the whole frame -> bars/s;
- labeller speed-up: `triple_barrier` against the plain loop of the tests
  (crypto_assets_tests/test_labels_reference.py) on the same entries and barriers of the first
  --reference-symbols series (the loop is too slow for all 90); target >= 50x;
- peak RSS of the process (ru_maxrss), and RSS after building the input;
- with --warehouse: a full `refresh_features` into a fresh DuckDB file (and PostgreSQL database
  with --postgres-url) holding all but the newest bar, then an incremental one after the newest
  bar of every series arrives.

Targets are printed, not asserted.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/features.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.common import Samples, machine_facts, print_facts, print_table, report_row  # noqa: E402
from benchmarks.labels import PARAMS, labeller_speedup  # noqa: E402
from crypto_assets.features.indicators import (  # noqa: E402
    SeriesArrays,
    compute_features,
    raw_indicator_calls,
    series_bounds,
)
from crypto_assets.labels.strategies import STRATEGIES, label_bars  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def build_bars(symbols: int, days: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = days * 96
    parts = []
    ts = pd.date_range("2025-01-01", periods=n, freq="15min", tz="UTC")
    for i in range(symbols):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
        spread = np.abs(rng.normal(0, 0.003, n))
        parts.append(
            pd.DataFrame(
                {
                    "exchange": "synthetic", "symbol": f"S{i:03d}-USD", "timeframe": "15m", "ts": ts,
                    "open": close, "high": close * (1 + spread), "low": close * (1 - spread),
                    "close": close, "volume": rng.gamma(2.0, 10.0, n),
                }
            )
        )  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def median_time(function, repeat: int) -> tuple[Samples, object]:
    samples, result = Samples(), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        samples.add(time.perf_counter() - started)
    return samples, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=90)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reference-symbols", type=int, default=3)
    parser.add_argument("--warehouse", action="store_true", help="also time refreshes into DuckDB")
    parser.add_argument("--postgres-url", help="with --warehouse, also into a throw-away database there")
    args = parser.parse_args()

    import talib  # imported before timing: its import is not part of any measurement

    bars = build_bars(args.symbols, args.days)
    n = len(bars)
    rss_input = current_rss_mb()
    print_facts(
        "features benchmark",
        machine_facts(
            [
                ("input", f"{args.symbols} symbols x {args.days} days x 96 bars (15m) = {n:,} base bars"),
                ("ta-lib", talib.__version__),
                ("numpy", np.__version__),
            ]
        ),
    )

    frame = bars.sort_values(["exchange", "symbol", "timeframe", "ts"]).reset_index(drop=True)
    arrays = [
        SeriesArrays(*(np.ascontiguousarray(frame[c].to_numpy(np.float64)[s:e]) for c in
                       ("open", "high", "low", "close", "volume")))
        for s, e in series_bounds(frame)
    ]  # fmt: skip
    raw, _ = median_time(lambda: [raw_indicator_calls(a) for a in arrays], args.repeat)
    features, result = median_time(lambda: compute_features(bars), args.repeat)
    assert len(result) == n
    memory = result.memory_usage(deep=True).sum() / 2**20
    memory64 = memory + sum(result[c].nbytes for c in result.columns if result[c].dtype == np.float32) / 2**20
    del result

    rows = [
        (
            "features (compute_features)",
            f"{features.median:.2f}",
            features.spread(),
            f"{n / features.median:,.0f}",
        ),
        ("raw indicator-library calls", f"{raw.median:.2f}", raw.spread(), f"{n / raw.median:,.0f}"),
    ]
    label_counts = {}
    for strategy in STRATEGIES:
        samples, labels = median_time(lambda s=strategy: label_bars(s, bars, PARAMS[s], 900), args.repeat)
        label_counts[strategy] = len(labels)
        rows.append((f"labels {strategy} ({len(labels):,} rows)", f"{samples.median:.2f}", samples.spread(),
                     f"{n / samples.median:,.0f}"))  # fmt: skip
    print()
    print_table(rows, ["measurement", "median s", "runs", "bars/s"])

    # the labeller against the plain loop, same entries and barriers (benchmarks/labels.py)
    speedup, ref_time, vec_time, entries_total = labeller_speedup(frame, arrays, args.reference_symbols)
    overhead = features.median / raw.median
    print()
    print_table(
        [
            ("features overhead over raw library calls", f"{overhead:.2f}x", "<= 3x", _ok(overhead <= 3)),
            (
                f"labeller speed-up over the loop ({args.reference_symbols} series, "
                f"{entries_total:,} entries, loop {ref_time:.2f} s, vectorized {vec_time:.3f} s)",
                f"{speedup:.0f}x", ">= 50x", _ok(speedup >= 50),
            ),
            ("RSS after building the input", f"{rss_input:,.0f} MB", "", ""),
            ("peak RSS", f"{peak_rss_mb():,.0f} MB", "", ""),
            ("features frame (float32 / if float64)", f"{memory:,.0f} / {memory64:,.0f} MB", "", ""),
        ],
        ["measure", "value", "target", ""],
    )  # fmt: skip
    report_row("features overhead over raw library calls", f"{overhead:.2f}x", "<= 3x", overhead <= 3)
    if args.warehouse:
        warehouse_refresh(bars, args.postgres_url)
    return 0


def _ok(passed: bool) -> str:
    return "ok" if passed else "MISSED"


def warehouse_refresh(bars: pd.DataFrame, postgres_url: str | None) -> None:
    from crypto_assets_tests.pg import scratch_database

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        rows += _refresh_rows("duckdb", f"duckdb:///{folder}/warehouse.duckdb", bars)
    if postgres_url:
        with scratch_database(postgres_url, "crypto_assets_bench") as url:
            rows += _refresh_rows("postgres", url, bars)
    print()
    print_table(rows, ["engine", "measurement", "s", "rows/s"])


def _refresh_rows(engine: str, url: str, bars: pd.DataFrame) -> list[tuple]:
    """Full refresh (read, compute, write in one transaction), then an incremental one after one new
    bar per series (plan + overlap of OVERLAP_BARS bars per series + write)."""
    from crypto_assets.features.refresh import refresh_features
    from crypto_assets.market import Timeframe
    from crypto_assets.warehouse import Warehouse
    from crypto_assets.warehouse.candles import upsert_candles
    from crypto_assets.warehouse.schema import ensure_ingestion_tables

    newest = bars["ts"].max()
    old, new = bars[bars["ts"] < newest], bars[bars["ts"] == newest]
    with Warehouse(url) as db:
        with db.begin() as connection:
            ensure_ingestion_tables(connection)
            upsert_candles(connection, old, nothing_stored=True)
        started = time.perf_counter()
        report = refresh_features(db, Timeframe.parse("15m"), full=True)
        full = time.perf_counter() - started
        with db.begin() as connection:
            upsert_candles(connection, new, nothing_stored=True)
        started = time.perf_counter()
        incremental = refresh_features(db, Timeframe.parse("15m"))
        seconds = time.perf_counter() - started
    return [
        (engine, "full refresh (read, compute, write)", f"{full:.1f}", f"{report.stored / full:,.0f}"),
        (
            engine,
            f"incremental refresh, 1 new bar x {len(new)} series ({sum(incremental.written.values())} rows)",
            f"{seconds:.1f}",
            "",
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
