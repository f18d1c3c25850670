"""Helpers the benchmarks share: the synthetic frame, a throw-away PostgreSQL database, the options
of the engine benchmarks, timing and reporting.

Nothing here is timed itself; a benchmark times what it calls between `time.perf_counter()`s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
from tabulate import tabulate

from crypto_assets.ingestion.sources.base import CandleSource, SourceBatch
from crypto_assets.ingestion.sources.synthetic import SyntheticSource
from crypto_assets.market import Timeframe
from crypto_assets.warehouse.bulk import to_arrow
from crypto_assets_tests.pg import redact, with_database  # noqa: F401 (re-exported)

#: prefix of the lines a benchmark reports its rows on (read by benchmarks/run_all.py)
ROW_PREFIX = "@row "
#: Benchmarks load a fixed window so runs are comparable: it starts here.
BENCH_START = datetime(2025, 1, 1, tzinfo=UTC)
#: the warehouse engines a benchmark can run on, and the server it makes a throw-away database on
ENGINES = ("duckdb", "postgres")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Bases the synthetic market prices like the real coins; further symbols are S001-USD, S002-USD...
_KNOWN_BASES = ["BTC", "ETH", "SOL", "ADA", "DOT", "DOGE"]


# --- the input -------------------------------------------------------------------------------------


def bench_symbols(count: int) -> list[str]:
    """`count` distinct BASE-QUOTE symbols: the familiar coins first, then S001-USD, S002-USD, ..."""
    bases = _KNOWN_BASES[:count] + [f"S{i:03d}" for i in range(1, count - len(_KNOWN_BASES) + 1)]
    return [f"{base}-USD" for base in bases]


@dataclass(frozen=True)
class Window:
    """What a benchmark loads: symbols x [start, end) at one timeframe, all bars closed by `now`."""

    symbols: list[str]
    timeframe: Timeframe
    start: datetime
    end: datetime

    @classmethod
    def of(cls, symbols: int, days: int, timeframe: str) -> Window:
        return cls(
            bench_symbols(symbols), Timeframe.parse(timeframe), BENCH_START, BENCH_START + timedelta(days)
        )

    @property
    def now(self) -> datetime:
        """A clock one day past the window, so no bar is still forming."""
        return self.end + timedelta(days=1)

    @property
    def expected_rows(self) -> int:
        return len(self.symbols) * (self.end - self.start).days * self.timeframe.bars_per_day

    def describe(self) -> str:
        days = (self.end - self.start).days
        return (
            f"{len(self.symbols)} symbols x {days} days x {self.timeframe.bars_per_day} bars "
            f"({self.timeframe}) = {self.expected_rows:,} rows, "
            f"{self.start:%Y-%m-%d}..{self.end:%Y-%m-%d}"
        )


def synthetic_batch(window: Window, seed: int = 7) -> SourceBatch:
    """The synthetic source's answer for `window`, built once (this is the slow, untimed part)."""
    source = SyntheticSource(seed=seed, now=window.now)
    return source.fetch(window.symbols, window.timeframe, window.start, window.end)


class PrebuiltSource(CandleSource):
    """A source that hands back a batch built in advance, so a timed load does no generating."""

    def __init__(self, batch: SourceBatch, exchange: str = SyntheticSource.exchange) -> None:
        self.batch = batch
        self.exchange = exchange

    def fetch(
        self, symbols: Sequence[str], timeframe: Timeframe, start: datetime, end: datetime
    ) -> SourceBatch:
        return self.batch


def arrow_table(frame: pd.DataFrame) -> pa.Table:
    """`frame` as Arrow exactly as the warehouse layer stages it (microsecond UTC timestamps)."""
    return to_arrow(frame)


# --- the options of the engine benchmarks (ingest, checks) ------------------------------------------


def parse_engine_args(description: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """The window's size, the engines (as a list), repeats and the PostgreSQL server; a bad value
    is a usage error (exit 2)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--symbols", type=int, default=90, help="how many symbols (default 90)")
    parser.add_argument("--days", type=int, default=180, help="how many UTC days (default 180)")
    parser.add_argument("--timeframe", default="15m", help="bar length (default 15m)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: duckdb,postgres")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; medians shown")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="a role that may CREATE DATABASE; a throw-away database is made there and dropped",
    )
    args = parser.parse_args(argv)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(args.engines) - set(ENGINES))
    if unknown or not args.engines:
        parser.error(
            f"--engines: use one or more of {', '.join(ENGINES)} (got {', '.join(unknown) or 'none'})"
        )
    for name in ("symbols", "days", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


# --- PostgreSQL ------------------------------------------------------------------------------------


def postgres_server_version(url: str) -> str:
    with psycopg.connect(url, connect_timeout=10) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


# --- timing and reporting --------------------------------------------------------------------------


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


@dataclass
class Samples:
    """Seconds of repeated runs of one measurement."""

    seconds: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.seconds.append(seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def spread(self) -> str:
        return ", ".join(f"{s:.2f}" for s in self.seconds)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as `uptime` shows them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def machine_facts(extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """Date, CPU, load and library versions: what a reader needs to compare two runs."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = load_average()
    facts = [
        ("date", f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"),
        ("cpu", f"{cores} cores ({usable} usable), {_cpu_model()}"),
        ("load average", f"{load} (1, 5, 15 min, before the run)"),
        ("python", f"{platform.python_version()} on {platform.system()} {platform.release()}"),
        (
            "libraries",
            ", ".join(
                f"{name} {_version(name)}"
                for name in ("duckdb", "psycopg", "sqlalchemy", "pandas", "pyarrow")
            ),
        ),
    ]
    return facts + list(extra)


def print_facts(title: str, facts: Sequence[tuple[str, str]]) -> None:
    print(title)
    width = max(len(key) for key, _ in facts)
    for key, value in facts:
        print(f"  {key:<{width}}  {value}")


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    print(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))


def report_row(measure: str, measured: str, target: str = "", met: bool | None = None) -> None:
    """One row of `make bench`'s table, printed for benchmarks/run_all.py (met: None = no target)."""
    verdict = "" if met is None else ("met" if met else "missed")
    row = {"measure": measure, "measured": measured, "target": target, "verdict": verdict}
    print(ROW_PREFIX + json.dumps(row), flush=True)
