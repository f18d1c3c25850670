"""Ingest benchmark: our loader against each warehouse engine's own bulk load of the same frame.

    python benchmarks/ingest.py [--symbols 90] [--days 180] [--timeframe 15m]
                                [--engines duckdb,postgres] [--repeat 3]
                                [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres]

The default size is 90 symbols x 180 days of 15m synthetic bars = 1,555,200 rows.

What is timed
-------------
The synthetic frame is generated once, up front, and not timed. A `PrebuiltSource` hands that
batch to `load_window`, so "ours" is exactly the production path minus generation: validation,
the writes (with their counts of inserted, updated and unchanged bars), quarantine and the
report. The first load finds no day stored, so its 180 days go in one bulk append; the re-load
finds every day stored and upserts each day in a transaction of its own. Its warehouse is
fresh (tables from `ensure_ingestion_tables`, created before the clock starts).

- first load: `load_window` into the empty tables;
- re-load: the same call again on the loaded tables (every bar unchanged).

The baseline loads the same rows (the candle frame as `load_window` writes it: key columns,
values and `loaded_at`, as a pandas DataFrame) into a table created with the same DDL as
`raw_ohlc` (same columns, PRIMARY KEY (exchange, symbol, timeframe, ts)), in one statement:

- DuckDB first load: `INSERT INTO t SELECT * FROM <frame as Arrow>`, DuckDB's native bulk path.
- DuckDB re-load: the same statement with `ON CONFLICT (key) DO UPDATE SET <values, loaded_at>`,
  DuckDB's idiomatic upsert of a keyed table, in one statement.
- PostgreSQL first load: one `COPY t FROM STDIN (FORMAT binary)` through psycopg 3's
  `cursor.copy`, of the frame's Arrow table encoded by pgpq (PostgreSQL's fastest bulk path: no
  value printed as text and parsed back; the CSV form of the same COPY is about 1.7x slower).
- PostgreSQL re-load: in one transaction, that `COPY` into a temporary table `(LIKE t)` then one
  `INSERT INTO t SELECT * FROM staged ON CONFLICT (key) DO UPDATE SET <values, loaded_at>`.

Both baseline re-loads update every row unconditionally: that is what the plain idiom does
(ours skips unchanged bars with `WHERE ... IS DISTINCT FROM`, part of what it is paid to do).

Conversions count on both sides: the baseline clock covers pandas -> Arrow (and its binary
encoding for PostgreSQL) as well as the load and its commit, as ours does. On DuckDB the
baseline also opens the database file and closes it (closing checkpoints) inside the clock,
because `load_window` opens and closes its connections too; on PostgreSQL both sides start with
an open connection.

Fairness between runs
---------------------
Each repeat runs, per engine, ours (first load then re-load) and the baseline (first load then
re-load), alternating which goes first; the table shows medians over `--repeat` runs and the
ratio of the medians, ours / baseline. Before every timed phase on PostgreSQL the server is
`CHECKPOINT`ed, untimed, so no phase pays for the previous one's dirty pages; before a re-load
the loaded table is also `VACUUM ANALYZE`d (as autovacuum would have done by the time a re-load
comes days later), so both sides meet a settled table with statistics.

Ours must do the right work or the run is an error: the first load inserts every row, the
re-load finds every row unchanged, nothing is quarantined, and raw_ohlc holds every row. The
baseline table must hold every row, and after its re-load every row must carry the re-load's
`loaded_at` (it really rewrote them). The script exits non-zero only on errors; a missed target
is reported, not failed. DuckDB files live in a temporary folder and PostgreSQL work in a
throw-away database `crypto_assets_bench_<random>`; both are removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path

if not __package__:  # run as `python benchmarks/ingest.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402
import psycopg  # noqa: E402
from pgpq import ArrowToPostgresBinaryEncoder  # noqa: E402

from benchmarks.common import (  # noqa: E402
    PrebuiltSource,
    Samples,
    Window,
    arrow_table,
    machine_facts,
    parse_engine_args,
    postgres_server_version,
    print_facts,
    print_table,
    redact,
    synthetic_batch,
    timed,
)
from crypto_assets.errors import UserError  # noqa: E402
from crypto_assets.ingestion.load import LoadReport, load_window  # noqa: E402
from crypto_assets.ingestion.sources.base import SourceBatch  # noqa: E402
from crypto_assets.warehouse import Warehouse  # noqa: E402
from crypto_assets.warehouse.schema import (  # noqa: E402
    KEY_COLUMNS,
    RAW_OHLC_DDL,
    VALUE_COLUMNS,
    ensure_ingestion_tables,
)
from crypto_assets_tests.pg import scratch_database  # noqa: E402

FIRST, RELOAD = "first load", "re-load"
PHASES = (FIRST, RELOAD)
TARGET = 1.5  # ours / baseline, first load

OURS_TABLES = ("raw_ohlc", "ohlc_quarantine")
BASE_TABLE = "bench_ohlc"
BASE_DDL = RAW_OHLC_DDL.replace("raw_ohlc", BASE_TABLE)  # same columns, same key
TABLE_COLUMNS = [*KEY_COLUMNS, *VALUE_COLUMNS, "loaded_at"]
_COLUMN_LIST = ", ".join(TABLE_COLUMNS)
# rows of a table, and rows written with a given loaded_at (the baseline re-load must rewrite all)
_COUNT = "SELECT count(*), count(*) FILTER (WHERE loaded_at = {param}) FROM {table}"
_UPSERT = f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in [*VALUE_COLUMNS, "loaded_at"]
)


class BenchmarkError(Exception):
    """The benchmark did not measure what it claims (wrong counts, missing rows)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- engines ---------------------------------------------------------------------------------------


class DuckdbBench:
    """Fresh DuckDB files in a temporary folder."""

    name = "duckdb"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.base_path = folder / "baseline.duckdb"

    def facts(self) -> list[tuple[str, str]]:
        return [("duckdb", f"files in {self.folder}")]

    def _fresh(self, path: Path) -> Path:
        for stale in (path, path.with_name(path.name + ".wal")):
            stale.unlink(missing_ok=True)
        return path

    @contextmanager
    def ours(self, tag: str) -> Iterator[Warehouse]:
        """A fresh file with the production tables for our loader; removed when the block ends."""
        path = self._fresh(self.folder / f"ours-{tag}.duckdb")
        try:
            with Warehouse(f"duckdb:///{path}") as warehouse:
                with warehouse.begin() as connection:
                    ensure_ingestion_tables(connection)
                yield warehouse
        finally:
            self._fresh(path)

    def settle(self, table: str, phase: str) -> None:
        """Nothing to do: every connection was closed, so DuckDB has checkpointed."""

    def base_prepare(self) -> None:
        with duckdb.connect(str(self._fresh(self.base_path))) as con:
            con.execute(BASE_DDL)

    def base_load(self, frame: pd.DataFrame, phase: str) -> None:
        con = duckdb.connect(str(self.base_path))
        try:
            con.register("frame_arrow", arrow_table(frame))
            upsert = _UPSERT if phase == RELOAD else ""
            con.execute(f"INSERT INTO {BASE_TABLE} SELECT {_COLUMN_LIST} FROM frame_arrow {upsert}")
            con.unregister("frame_arrow")
        finally:
            con.close()

    def rows(self, table: str, loaded_at: pd.Timestamp, path: Path | None = None) -> tuple[int, int]:
        with duckdb.connect(str(path or self.base_path), read_only=True) as con:
            sql = _COUNT.format(table=table, param="?")
            return tuple(con.execute(sql, [loaded_at.to_pydatetime()]).fetchone())

    def ours_rows(self, warehouse: Warehouse) -> int:
        return self.rows("raw_ohlc", pd.Timestamp(0, tz="UTC"), Path(warehouse.url.database))[0]

    def base_close(self) -> None:
        self._fresh(self.base_path)

    def close(self) -> None:
        pass


class PostgresBench:
    """One throw-away database; ours uses the production tables, the baseline `bench_ohlc`."""

    name = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = psycopg.connect(url, autocommit=True)  # DDL, VACUUM, CHECKPOINT
        self.conn = psycopg.connect(url)  # the baseline's connection, one transaction per phase

    def facts(self) -> list[tuple[str, str]]:
        settings = {
            name: str(self.admin.execute(f"SHOW {name}").fetchone()[0])
            for name in ("shared_buffers", "synchronous_commit", "max_wal_size")
        }
        server = postgres_server_version(self.url)
        described = ", ".join(f"{k}={v}" for k, v in settings.items())
        return [("postgres", f"server {server} ({described}), database {redact(self.url)}")]

    @contextmanager
    def ours(self, tag: str) -> Iterator[Warehouse]:
        """Fresh production tables for our loader; dropped when the block ends."""
        self.admin.execute(f"DROP TABLE IF EXISTS {', '.join(OURS_TABLES)}")
        try:
            with Warehouse(self.url) as warehouse:
                with warehouse.begin() as connection:
                    ensure_ingestion_tables(connection)
                yield warehouse
        finally:
            self.admin.execute(f"DROP TABLE IF EXISTS {', '.join(OURS_TABLES)}")

    def settle(self, table: str, phase: str) -> None:
        if phase == RELOAD:
            self.admin.execute(f"VACUUM ANALYZE {table}")
        self.admin.execute("CHECKPOINT")

    def base_prepare(self) -> None:
        self.admin.execute(f"DROP TABLE IF EXISTS {BASE_TABLE}")
        self.admin.execute(BASE_DDL)

    def base_load(self, frame: pd.DataFrame, phase: str) -> None:
        table = arrow_table(frame)  # its types are the table's: binary COPY needs no cast
        encoder = ArrowToPostgresBinaryEncoder(table.schema)
        with self.conn.transaction(), self.conn.cursor() as cursor:
            target = BASE_TABLE
            if phase == RELOAD:
                target = "bench_staged"
                cursor.execute(f"CREATE TEMP TABLE {target} (LIKE {BASE_TABLE}) ON COMMIT DROP")
            with cursor.copy(f"COPY {target} ({_COLUMN_LIST}) FROM STDIN (FORMAT binary)") as copy:
                copy.write(encoder.write_header())
                for batch in table.to_batches():
                    copy.write(encoder.write_batch(batch))
                copy.write(encoder.finish())
            if phase == RELOAD:
                cursor.execute(f"INSERT INTO {BASE_TABLE} SELECT {_COLUMN_LIST} FROM {target} {_UPSERT}")

    def rows(self, table: str, loaded_at: pd.Timestamp) -> tuple[int, int]:
        sql = _COUNT.format(table=table, param="%s")
        return tuple(self.admin.execute(sql, [loaded_at.to_pydatetime()]).fetchone())

    def ours_rows(self, warehouse: Warehouse) -> int:
        return self.rows("raw_ohlc", pd.Timestamp(0, tz="UTC"))[0]

    def base_close(self) -> None:
        self.admin.execute(f"DROP TABLE IF EXISTS {BASE_TABLE}")

    def close(self) -> None:
        self.conn.close()
        self.admin.close()


# --- the two sides ---------------------------------------------------------------------------------


def check_ours(phase: str, report: LoadReport, expected: int) -> None:
    counts = report.counts
    want_inserted, want_unchanged = (expected, 0) if phase == FIRST else (0, expected)
    ok = (
        report.rows_in == expected
        and counts.inserted == want_inserted
        and counts.unchanged == want_unchanged
        and counts.updated == 0
        and counts.quarantined == 0
        and report.merged == 0
        and not report.failures
        and report.reconciles()
    )
    if not ok:
        raise BenchmarkError(
            f"ours, {phase}: expected {want_inserted} inserted and {want_unchanged} unchanged of "
            f"{expected} rows, got rows_in={report.rows_in} {counts} merged={report.merged} "
            f"failures={report.failures}"
        )


def run_ours(bench, batch: SourceBatch, window: Window, tag: str) -> dict[str, tuple[float, LoadReport]]:
    source = PrebuiltSource(batch)
    results = {}
    with bench.ours(tag) as warehouse:
        for phase in PHASES:
            bench.settle("raw_ohlc", phase)
            seconds, report = timed(
                lambda: load_window(
                    warehouse,
                    source,
                    symbols=window.symbols,
                    known_symbols=window.symbols,
                    timeframe=window.timeframe,
                    start=window.start,
                    end=window.end,
                    now=window.now,
                    run_id=f"bench-{tag}",
                )
            )
            check_ours(phase, report, window.expected_rows)
            stored = bench.ours_rows(warehouse)
            if stored != window.expected_rows:
                raise BenchmarkError(
                    f"ours, {phase}: raw_ohlc holds {stored} rows, expected {window.expected_rows}"
                )
            results[phase] = (seconds, report)
    return results


def run_baseline(bench, frames: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Time each phase's bulk load; each phase's frame carries its own loaded_at, so the re-load
    is seen to rewrite every row."""
    bench.base_prepare()
    results = {}
    try:
        for phase in PHASES:
            frame = frames[phase]
            bench.settle(BASE_TABLE, phase)
            seconds, _ = timed(partial(bench.base_load, frame, phase))
            rows, written = bench.rows(BASE_TABLE, frame["loaded_at"].iloc[0])
            if rows != len(frame) or written != len(frame):
                raise BenchmarkError(
                    f"baseline, {phase}: table holds {rows} rows, {written} of them from this phase; "
                    f"expected {len(frame)} and {len(frame)}"
                )
            results[phase] = seconds
    finally:
        bench.base_close()
    return results


def baseline_frames(batch: SourceBatch, exchange: str, timeframe: str) -> dict[str, pd.DataFrame]:
    """The rows `load_window` writes, as one frame in the table's column order, per phase (the
    re-load's rows are written a second later)."""
    frame = batch.frame.assign(exchange=exchange, timeframe=timeframe)[[*KEY_COLUMNS, *VALUE_COLUMNS]]
    frame = frame.reset_index(drop=True)
    first = pd.Timestamp.now(tz="UTC").floor("us")
    return {
        FIRST: frame.assign(loaded_at=first),
        RELOAD: frame.assign(loaded_at=first + pd.Timedelta(seconds=1)),
    }


# --- main ------------------------------------------------------------------------------------------


def benchmark(args: argparse.Namespace, open_engines: Callable[[], list]) -> None:
    window = Window.of(args.symbols, args.days, args.timeframe)
    facts = machine_facts()
    engines = open_engines()
    for bench in engines:
        facts += bench.facts()
    log(f"generating {window.describe()} ...")
    generate_seconds, batch = timed(lambda: synthetic_batch(window))
    if len(batch.frame) != window.expected_rows:
        raise BenchmarkError(
            f"the synthetic source gave {len(batch.frame)} rows, expected {window.expected_rows}"
        )
    frames = baseline_frames(batch, PrebuiltSource(batch).exchange, window.timeframe.name)
    facts += [
        ("frame", f"{window.describe()}; generated in {generate_seconds:.1f} s (not timed)"),
        ("method", f"median of {args.repeat} interleaved run(s); ratio = ours / baseline"),
    ]

    ours = {(b.name, p): Samples() for b in engines for p in PHASES}
    base = {(b.name, p): Samples() for b in engines for p in PHASES}
    counts: dict[tuple[str, str], LoadReport] = {}
    for run in range(args.repeat):
        for bench in engines:
            sides = ["ours", "baseline"] if (run % 2 == 0) else ["baseline", "ours"]
            for side in sides:
                log(f"run {run + 1}/{args.repeat}: {bench.name}, {side} ...")
                if side == "ours":
                    for phase, (seconds, report) in run_ours(bench, batch, window, f"r{run}").items():
                        ours[bench.name, phase].add(seconds)
                        counts.setdefault((bench.name, phase), report)
                        log(f"  {phase}: {seconds:.2f} s")
                else:
                    for phase, seconds in run_baseline(bench, frames).items():
                        base[bench.name, phase].add(seconds)
                        log(f"  {phase}: {seconds:.2f} s")

    rows_n = window.expected_rows
    table, verdicts, detail = [], [], []
    for bench in engines:
        for phase in PHASES:
            o, b = ours[bench.name, phase], base[bench.name, phase]
            ratio = o.median / b.median
            table.append(
                [
                    bench.name,
                    phase,
                    f"{o.median:.2f}",
                    f"{b.median:.2f}",
                    f"{ratio:.2f}",
                    f"{rows_n / o.median:,.0f}",
                    f"{rows_n / b.median:,.0f}",
                ]
            )
            c = counts[bench.name, phase].counts
            detail.append(
                f"  {bench.name} {phase}: ours [{o.spread()}] s, baseline [{b.spread()}] s; ours wrote "
                f"inserted={c.inserted:,} updated={c.updated:,} unchanged={c.unchanged:,} "
                f"quarantined={c.quarantined:,}"
            )
            if phase == FIRST:
                verdicts.append(f"  {bench.name}: {ratio:.2f} -> {'met' if ratio <= TARGET else 'missed'}")

    print_facts("crypto_assets ingest benchmark", facts)
    print()
    print_table(
        table,
        headers=["engine", "phase", "ours s", "baseline s", "ratio", "ours rows/s", "baseline rows/s"],
    )
    print()
    print(f"target ≤ {TARGET} for the first load (ours / baseline):")
    print("\n".join(verdicts))
    print("runs and counts:")
    print("\n".join(detail))


def main(argv: list[str] | None = None) -> int:
    args = parse_engine_args(__doc__.split("\n\n")[0], argv)
    folder = Path(tempfile.mkdtemp(prefix="crypto_assets_bench_"))
    opened: list = []
    try:
        with _maybe_database(args) as pg_url:

            def open_engines() -> list:
                for name in args.engines:
                    opened.append(DuckdbBench(folder) if name == "duckdb" else PostgresBench(pg_url))
                return opened

            try:
                benchmark(args, open_engines)
            finally:
                for bench in opened:
                    bench.close()
    except (UserError, BenchmarkError, psycopg.OperationalError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def _maybe_database(args: argparse.Namespace) -> AbstractContextManager[str | None]:
    if "postgres" in args.engines:
        return scratch_database(args.postgres_url, "crypto_assets_bench")
    return nullcontext()


if __name__ == "__main__":
    sys.exit(main())
