"""Checks benchmark: the raw_ohlc checks against the load of the window they check.

    python benchmarks/checks.py [--symbols 90] [--days 180] [--timeframe 15m]
                                [--engines duckdb,postgres] [--repeat 3]
                                [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

The default size is 90 symbols x 180 days of 15m synthetic bars = 1,555,200 rows (seed scale).

Per engine and repeat, on a fresh warehouse (a new DuckDB file; a throw-away PostgreSQL
database whose tables are dropped between repeats):

- load: `load_window` of the whole window into empty tables (validation, the bulk append,
  quarantine, report), from a synthetic frame generated once and not timed;
- checks: `check_window` with all three checks, what the `raw_ohlc_checks` step runs: one bulk
  read of the window, the Great Expectations suite, gaps and outlier moves.

The ratio is checks / load (medians), target <= 0.5. A breakdown times the parts separately once
per repeat (read, the suite, ordering the bars by series once, gaps, outlier moves). Great
Expectations is imported before any clock starts; its import (paid once per process that runs
the checks) is reported on its own. The run fails if the checks do not pass on
the clean synthetic data (expectations met, no gaps) or the load does not insert every row.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

if not __package__:  # run as `python benchmarks/checks.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from benchmarks.common import (  # noqa: E402
    PrebuiltSource,
    Samples,
    Window,
    load_average,
    machine_facts,
    parse_engine_args,
    postgres_server_version,
    print_facts,
    print_table,
    redact,
    report_row,
    synthetic_batch,
    timed,
)
from crypto_assets.errors import UserError  # noqa: E402
from crypto_assets.ingestion.bar_series import SortedBars  # noqa: E402
from crypto_assets.ingestion.checks import (  # noqa: E402
    EXPECTATIONS_CHECK,
    GAPS_CHECK,
    OUTLIERS_CHECK,
    check_window,
    find_gaps,
    find_outlier_moves,
    read_window,
    run_expectations,
)
from crypto_assets.ingestion.load import load_window  # noqa: E402
from crypto_assets.warehouse import Warehouse  # noqa: E402
from crypto_assets.warehouse.schema import ensure_ingestion_tables  # noqa: E402
from crypto_assets_tests.pg import scratch_database  # noqa: E402

TARGET = 0.5  # checks / load
ALL_CHECKS = {EXPECTATIONS_CHECK, GAPS_CHECK, OUTLIERS_CHECK}
PARTS = ("read", "expectations", "order", "gaps", "outliers")


class BenchmarkError(Exception):
    """The benchmark did not measure what it claims."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fresh_warehouse(engine: str, folder: Path, pg_url: str | None, run: int) -> Warehouse:
    if engine == "duckdb":
        warehouse = Warehouse(f"duckdb:///{folder / f'checks_{run}.duckdb'}")
    else:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("DROP TABLE IF EXISTS raw_ohlc, ohlc_quarantine")
            admin.execute("CHECKPOINT")
        warehouse = Warehouse(pg_url)
    with warehouse.begin() as connection:
        ensure_ingestion_tables(connection)
    return warehouse


def one_run(warehouse: Warehouse, batch, window: Window) -> tuple[float, float, dict[str, float]]:
    """(load seconds, checks seconds, seconds per part) on a fresh `warehouse`."""
    load_seconds, report = timed(
        lambda: load_window(
            warehouse,
            PrebuiltSource(batch),
            symbols=window.symbols,
            known_symbols=window.symbols,
            timeframe=window.timeframe,
            start=window.start,
            end=window.end,
            now=window.now,
            run_id="bench",
        )
    )
    if report.counts.inserted != window.expected_rows:
        raise BenchmarkError(f"the load inserted {report.counts.inserted} of {window.expected_rows} rows")
    tf = window.timeframe
    checks_seconds, results = timed(
        lambda: list(check_window(warehouse, tf.name, tf.seconds, window.start, window.end, ALL_CHECKS))
    )
    verdicts = {r.check_name: r.passed for r in results}
    if not (verdicts[EXPECTATIONS_CHECK] and verdicts[GAPS_CHECK]):
        raise BenchmarkError(f"the checks failed on clean synthetic data: {verdicts}")
    parts: dict[str, float] = {}
    parts["read"], candles = timed(lambda: read_window(warehouse, tf.name, window.start, window.end))
    parts["expectations"], _ = timed(lambda: run_expectations(candles, tf.seconds))
    parts["order"], bars = timed(lambda: SortedBars.of(candles))
    parts["gaps"], _ = timed(lambda: find_gaps(candles, tf.seconds, bars=bars))
    parts["outliers"], _ = timed(lambda: find_outlier_moves(candles, bars=bars))
    return load_seconds, checks_seconds, parts


def benchmark(args: argparse.Namespace, folder: Path, pg_url: str | None) -> None:
    window = Window.of(args.symbols, args.days, args.timeframe)
    facts = machine_facts()
    if pg_url:
        facts.append(("postgres", f"server {postgres_server_version(pg_url)}, database {redact(pg_url)}"))
    started = time.perf_counter()
    import great_expectations  # noqa: F401  (paid once per process, reported apart)

    gx_import = time.perf_counter() - started
    log(f"generating {window.describe()} ...")
    generate_seconds, batch = timed(lambda: synthetic_batch(window))
    facts += [
        ("frame", f"{window.describe()}; generated in {generate_seconds:.1f} s (not timed)"),
        ("great_expectations", f"import {gx_import:.1f} s, once per process (not in the checks' time)"),
        ("method", f"median of {args.repeat} run(s) per engine, each on a fresh warehouse"),
    ]
    load = {e: Samples() for e in args.engines}
    checks = {e: Samples() for e in args.engines}
    parts = {(e, p): Samples() for e in args.engines for p in PARTS}
    for run in range(args.repeat):
        for engine in args.engines:
            log(f"run {run + 1}/{args.repeat}: {engine} ...")
            with fresh_warehouse(engine, folder, pg_url, run) as warehouse:
                load_seconds, checks_seconds, part_seconds = one_run(warehouse, batch, window)
            load[engine].add(load_seconds)
            checks[engine].add(checks_seconds)
            for part, seconds in part_seconds.items():
                parts[engine, part].add(seconds)
            log(f"  load {load_seconds:.2f} s, checks {checks_seconds:.2f} s")

    rows, verdicts = [], []
    for engine in args.engines:
        ratio = checks[engine].median / load[engine].median
        breakdown = ", ".join(f"{p} {parts[engine, p].median:.2f}" for p in PARTS)
        rows.append(
            [engine, f"{load[engine].median:.2f}", f"{checks[engine].median:.2f}", f"{ratio:.2f}", breakdown]
        )
        verdicts.append(
            f"  {engine}: {ratio:.2f} -> {'met' if ratio <= TARGET else 'missed'} "
            f"(load [{load[engine].spread()}] s, checks [{checks[engine].spread()}] s)"
        )
        report_row(
            f"checks / load, {engine}",
            f"{ratio:.2f} (checks {checks[engine].median:.2f} s, load {load[engine].median:.2f} s)",
            f"<= {TARGET}",
            ratio <= TARGET,
        )
    print_facts("crypto_assets raw_ohlc checks benchmark", facts)
    print()
    print_table(rows, headers=["engine", "load s", "checks s", "checks / load", "parts s (median)"])
    print()
    print(f"target checks / load <= {TARGET}:")
    print("\n".join(verdicts))
    print(f"load average after the runs: {load_average()} (1, 5, 15 min)")


def main(argv: list[str] | None = None) -> int:
    args = parse_engine_args(__doc__.split("\n\n")[0], argv)
    folder = Path(tempfile.mkdtemp(prefix="crypto_assets_bench_checks_"))
    try:
        if "postgres" in args.engines:
            with scratch_database(args.postgres_url, "crypto_assets_bench") as pg_url:
                benchmark(args, folder, pg_url)
        else:
            benchmark(args, folder, None)
    except (UserError, BenchmarkError, psycopg.OperationalError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
