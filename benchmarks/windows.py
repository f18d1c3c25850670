"""Windows benchmark: "the last 24 h of one symbol" from ohlc_today and from raw_ohlc, and the
incremental dbt refresh after one new bar per symbol against a full rebuild, on both engines.

    python benchmarks/windows.py [--symbols 90] [--days 180] [--timeframe 15m]
                                 [--engines duckdb,postgres] [--queries 200]
                                 [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

The default size is 90 symbols x 180 days of 15m synthetic bars = 1,555,200 raw rows.

What is measured
----------------
Setup, untimed: the synthetic frame is generated once and loaded with `load_window` (the
production path) into a fresh warehouse per engine: a DuckDB file in a temporary folder, a
throw-away PostgreSQL database.

- full rebuild: `dbt run --full-refresh` of every model (ohlc_1h, ohlc_4h, ohlc_1d incremental,
  ohlc_today, ohlc_recent tables), through `python -m crypto_assets.transform` as a user runs it,
  with `--threads 1` so the models' execution times add up (they would overlap otherwise);
- then one new bar per symbol is loaded with `load_window`, and
- incremental refresh: `dbt run` of the same models (the resampled ones incremental, the
  windows rebuilt whole).
  Both are shown as wall-clock time of the dbt process (which includes dbt's own start-up and
  parse, several seconds) and as the sum of the models' execution times from run_results.json
  (the SQL work); the ratio incremental / full is given for both.

- latency: `--queries` executions (after 20 untimed warm-ups) of each query below, each for a
  symbol drawn at random (fixed seed), through the engine's native driver: psycopg 3 with
  server-side prepared statements, DuckDB's Python API on a read-only connection. Timed from
  execute to the last row fetched; p50 and p95 in milliseconds.
    window      SELECT ts, open, high, low, close, volume FROM ohlc_today
                WHERE symbol = $1 ORDER BY ts
    raw         the same rows from raw_ohlc: WHERE symbol = $1 AND timeframe = <base> AND
                ts > (newest ts of that symbol) - 24 h, the way the seed trackers asked
    raw by key  the same with exchange = 'synthetic' as well, so PostgreSQL can use the primary
                key (exchange, symbol, timeframe, ts): the best a raw query can do

Targets (printed, not asserted): window p50 <= 5 ms on both engines; on PostgreSQL the window
>= 10x faster than raw. The script exits non-zero only when a measurement is wrong (a window
query not returning exactly the bars of the last 24 h, a dbt run failing).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

if not __package__:  # run as `python benchmarks/windows.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402
import psycopg  # noqa: E402

from benchmarks.common import (  # noqa: E402
    PrebuiltSource,
    Window,
    machine_facts,
    postgres_server_version,
    print_facts,
    print_table,
    redact,
    synthetic_batch,
)
from crypto_assets.ingestion.load import load_window  # noqa: E402
from crypto_assets.ingestion.sources.synthetic import SyntheticSource  # noqa: E402
from crypto_assets.market import Timeframe  # noqa: E402
from crypto_assets.names import WINDOW_MODELS, resampled_models  # noqa: E402
from crypto_assets.transform.project import DbtSetup  # noqa: E402
from crypto_assets.warehouse import Warehouse  # noqa: E402
from crypto_assets.warehouse.schema import ensure_ingestion_tables  # noqa: E402
from crypto_assets_tests.pg import scratch_database  # noqa: E402

ENGINES = ("duckdb", "postgres")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WARMUP = 20
WINDOW_P50_TARGET_MS = 5.0
PG_SPEEDUP_TARGET = 10.0
MODELS = (*resampled_models(Timeframe.parse("15m")).values(), *WINDOW_MODELS)  # of the 15m base
TODAY = WINDOW_MODELS[0]  # ohlc_today: each symbol's bars of the last 24 h


class BenchmarkError(Exception):
    """The benchmark did not measure what it claims."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the queries -----------------------------------------------------------------------------------


def queries(base: Timeframe, placeholder: str) -> dict[str, tuple[str, Callable[[str], tuple]]]:
    """name -> (SQL, parameters for a symbol). `placeholder` is `%s` (psycopg) or `?` (DuckDB)."""
    p = placeholder
    columns = "ts, open, high, low, close, volume"
    raw = (
        f"SELECT {columns} FROM raw_ohlc WHERE symbol = {p} AND timeframe = '{base.name}' "
        f"AND ts > (SELECT max(ts) FROM raw_ohlc WHERE symbol = {p} AND timeframe = '{base.name}') "
        "- INTERVAL '24 hours' ORDER BY ts"
    )
    by_key = (
        f"SELECT {columns} FROM raw_ohlc WHERE exchange = 'synthetic' AND symbol = {p} "
        f"AND timeframe = '{base.name}' AND ts > (SELECT max(ts) FROM raw_ohlc WHERE "
        f"exchange = 'synthetic' AND symbol = {p} AND timeframe = '{base.name}') - INTERVAL '24 hours' "
        "ORDER BY ts"
    )
    return {
        "window": (f"SELECT {columns} FROM {TODAY} WHERE symbol = {p} ORDER BY ts", lambda s: (s,)),
        "raw": (raw, lambda s: (s, s)),
        "raw by key": (by_key, lambda s: (s, s)),
    }


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def measure(execute: Callable[[str, tuple], list], sql: str, params, symbols, count: int, bars: int):
    """Latencies (seconds) of `count` executions for random symbols; checks every answer's size."""
    rng = random.Random(42)
    samples = []
    for index in range(WARMUP + count):
        symbol = rng.choice(symbols)
        started = time.perf_counter()
        rows = execute(sql, params(symbol))
        elapsed = time.perf_counter() - started
        if len(rows) != bars:
            raise BenchmarkError(f"{sql[:60]}... for {symbol} returned {len(rows)} rows, expected {bars}")
        if index >= WARMUP:
            samples.append(elapsed)
    return samples


# --- engines ---------------------------------------------------------------------------------------


@contextmanager
def duckdb_engine(folder: Path) -> Iterator[tuple[str, Callable]]:
    path = folder / "windows.duckdb"

    @contextmanager
    def reader():
        connection = duckdb.connect(str(path), read_only=True)
        connection.execute("SET TimeZone = 'UTC'")
        try:
            yield lambda sql, params: connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    yield f"duckdb:///{path}", reader


@contextmanager
def postgres_engine(admin_url: str) -> Iterator[tuple[str, Callable]]:
    with scratch_database(admin_url, "crypto_assets_bench_windows") as url:

        @contextmanager
        def reader():
            # prepare_threshold=0: every statement is prepared on the server from its first use
            with psycopg.connect(url, prepare_threshold=0, options="-c TimeZone=UTC") as connection:
                yield lambda sql, params: connection.execute(sql, params).fetchall()

        yield url, reader


# --- dbt -------------------------------------------------------------------------------------------


def dbt_run(url: str, base: Timeframe, *, full_refresh: bool) -> dict:
    """One `dbt run` of the models; wall-clock seconds and per-model execution time and rows."""
    # one model at a time, so the models' execution times add up to the SQL work of the run
    args = ["run", "--threads", "1", "--select", *MODELS] + (["--full-refresh"] if full_refresh else [])
    setup = DbtSetup(base)
    started = time.perf_counter()
    result = setup.run(args, url, capture=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchmarkError(f"dbt {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    results = json.loads((setup.by_hand_dir / "run_results.json").read_text())["results"]
    models = {
        r["unique_id"].rsplit(".", 1)[-1]: (r["execution_time"], r["adapter_response"].get("rows_affected"))
        for r in results
    }
    return {"wall": wall, "sql": sum(seconds for seconds, _ in models.values()), "models": models}


# --- the benchmark ---------------------------------------------------------------------------------


def run_engine(name: str, url: str, reader, window: Window, batch, queries_per_variant: int) -> dict:
    base = window.timeframe
    log(f"[{name}] loading {window.describe()} with load_window (untimed)")
    with Warehouse(url) as warehouse:  # disposed before dbt opens the warehouse
        with warehouse.begin() as connection:
            ensure_ingestion_tables(connection)
        started = time.perf_counter()
        report = load_window(
            warehouse, PrebuiltSource(batch), symbols=window.symbols, known_symbols=window.symbols,
            timeframe=base, start=window.start, end=window.end, now=window.now,
        )  # fmt: skip
        load_seconds = time.perf_counter() - started
    if report.counts.inserted != window.expected_rows:
        raise BenchmarkError(
            f"[{name}] loaded {report.counts.inserted} rows, expected {window.expected_rows}"
        )

    log(f"[{name}] dbt run --full-refresh")
    full = dbt_run(url, base, full_refresh=True)

    log(f"[{name}] one new bar per symbol, then dbt run (incremental)")
    new_bar = window.end
    source = SyntheticSource(now=new_bar + timedelta(days=1))
    with Warehouse(url) as warehouse:
        report = load_window(
            warehouse, source, symbols=window.symbols, known_symbols=window.symbols, timeframe=base,
            start=new_bar, end=new_bar + base.delta, now=new_bar + timedelta(days=1),
        )  # fmt: skip
    if report.counts.inserted != len(window.symbols):
        raise BenchmarkError(f"[{name}] appended {report.counts.inserted} bars, expected one per symbol")
    incremental = dbt_run(url, base, full_refresh=False)

    bars = 24 * 3600 // base.seconds
    latency = {}
    with reader() as execute:
        for variant, (sql, params) in queries(base, "?" if name == "duckdb" else "%s").items():
            log(f"[{name}] {queries_per_variant} x {variant}")
            latency[variant] = percentiles(
                measure(execute, sql, params, window.symbols, queries_per_variant, bars)
            )
    return {"load": load_seconds, "full": full, "incremental": incremental, "latency": latency}


def report(results: dict[str, dict], window: Window, facts: list[tuple[str, str]]) -> None:
    print()
    print_facts(f"windows benchmark: {window.describe()}", facts)
    print()
    print("Latency of 'last 24 h of one symbol' (ms; native driver, random symbols)")
    rows = []
    for name, result in results.items():
        lat = result["latency"]
        window_p50 = lat["window"][0]
        for variant, (p50, p95) in lat.items():
            speedup = "" if variant == "window" else f"{p50 / window_p50:.1f}x"
            rows.append([name, variant, f"{p50:.2f}", f"{p95:.2f}", speedup])
    print_table(rows, ["engine", "query", "p50", "p95", "p50 / window p50"])
    print()
    print("dbt refresh after one new bar per symbol vs full rebuild (dbt run of the 5 models)")
    rows = []
    for name, result in results.items():
        full, inc = result["full"], result["incremental"]
        rows.append([
            name, f"{full['wall']:.1f}", f"{inc['wall']:.1f}", f"{inc['wall'] / full['wall']:.2f}",
            f"{full['sql']:.2f}", f"{inc['sql']:.2f}", f"{inc['sql'] / full['sql']:.3f}",
        ])  # fmt: skip
    print_table(
        rows,
        ["engine", "full wall s", "incr wall s", "wall ratio", "full SQL s", "incr SQL s", "SQL ratio"],
    )
    print()
    print("per model: execution seconds (rows written) full -> incremental")
    rows = []
    for name, result in results.items():
        for model in MODELS:
            full_s, full_rows = result["full"]["models"][model]
            inc_s, inc_rows = result["incremental"]["models"][model]
            rows.append([name, model, f"{full_s:.2f} ({full_rows})", f"{inc_s:.2f} ({inc_rows})"])
    print_table(rows, ["engine", "model", "full refresh", "incremental"])
    print()
    for name, result in results.items():
        p50 = result["latency"]["window"][0]
        verdict = "met" if p50 <= WINDOW_P50_TARGET_MS else "MISSED"
        print(f"target window p50 <= {WINDOW_P50_TARGET_MS:g} ms on {name}: {p50:.2f} ms, {verdict}")
    if "postgres" in results:
        lat = results["postgres"]["latency"]
        speedup = lat["raw"][0] / lat["window"][0]
        verdict = "met" if speedup >= PG_SPEEDUP_TARGET else "MISSED"
        print(
            f"target PostgreSQL window >= {PG_SPEEDUP_TARGET:g}x faster than raw: {speedup:.1f}x, {verdict}"
        )
        print(f"  (raw by key, the primary-key query: {lat['raw by key'][0] / lat['window'][0]:.1f}x)")
    print(
        "load_window (setup, untimed above): "
        + ", ".join(f"{n} {r['load']:.0f} s" for n, r in results.items())
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=90, help="how many symbols (default 90)")
    parser.add_argument("--days", type=int, default=180, help="how many UTC days (default 180)")
    parser.add_argument("--timeframe", default="15m", help="base bar length (default 15m)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: duckdb,postgres")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per variant (default 200)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="server to create a database on")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        print(
            f"windows.py: unknown engine(s) {', '.join(sorted(unknown))}: use duckdb,postgres",
            file=sys.stderr,
        )
        return 2
    window = Window.of(args.symbols, args.days, args.timeframe)
    DbtSetup(window.timeframe).prepare_manifest("duckdb:///unused.duckdb")
    facts = machine_facts([("dbt", "dbt-core 1.11, run through python -m crypto_assets.transform")])
    log(f"generating {window.describe()} (untimed)")
    batch = synthetic_batch(window)
    results: dict[str, dict] = {}
    folder = Path(tempfile.mkdtemp(prefix="crypto_assets_windows_"))
    try:
        for name in engines:
            if name == "duckdb":
                with duckdb_engine(folder) as (url, reader):
                    results[name] = run_engine(name, url, reader, window, batch, args.queries)
            else:
                facts.append(
                    (
                        "postgresql",
                        f"{postgres_server_version(args.postgres_url)} at {redact(args.postgres_url)}",
                    )
                )
                with postgres_engine(args.postgres_url) as (url, reader):
                    results[name] = run_engine(name, url, reader, window, batch, args.queries)
    except BenchmarkError as error:
        print(f"windows.py: error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(results, window, facts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
