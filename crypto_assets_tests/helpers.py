"""Helpers the tests share: run raw_ohlc through Dagster, run the console script, fingerprint a table."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    DagsterInstance,
    ExecuteInProcessResult,
    MaterializeResult,
    asset,
    materialize,
)

from crypto_assets.ingestion.assets import build_raw_ohlc
from crypto_assets.market import Timeframe
from crypto_assets.resources import CandleSourceResource, MarketResource, WarehouseResource
from crypto_assets.warehouse import Warehouse

SIX = "BTC-USD,ETH-USD,SOL-USD,ADA-USD,DOT-USD,DOGE-USD"
#: the `crypto-assets` console script of this environment, run as a user runs it
SCRIPT = str(Path(sys.executable).with_name("crypto-assets"))
RAW_OHLC = build_raw_ohlc(date(2025, 1, 1), Timeframe.parse("15m"))
#: the SIX symbols x 90 days of the synthetic market at 15m: enough closed labels for all three
#: strategies; a fixed window, so the outcome does not depend on the day the test runs (the market
#: is the same bar by bar whatever range asks for it): swing shows an edge, dca and channel do not
TRAINED_WINDOW = ("2026-09-02", "2026-11-30")


def materialize_raw(
    warehouse_url: str,
    *,
    first_day: str,
    last_day: str,
    source: str = "synthetic",
    symbols: str = SIX,
    only: Sequence[str] | None = None,
    ccxt_api_url: str | None = None,
    instance: DagsterInstance | None = None,
) -> ExecuteInProcessResult:
    """One single-run backfill of raw_ohlc over [first_day, last_day], like the UI or CLI does."""
    run_config = {"ops": {"raw_ohlc": {"config": {"symbols": list(only)}}}} if only else None
    return materialize(
        [RAW_OHLC],
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "source": CandleSourceResource(
                spec=source, ccxt_api_url=ccxt_api_url, ccxt_max_retries=2, ccxt_backoff_seconds=0.01
            ),
            "market": MarketResource(symbols=symbols),
        },
        run_config=run_config,
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first_day,
            "dagster/asset_partition_range_end": last_day,
        },
        raise_on_error=False,
    )


def table_fingerprint(warehouse: Warehouse, table: str, columns: Sequence[str]) -> tuple[int, str]:
    """Row count and a checksum of the given columns, independent of row order and engine."""
    return _fingerprint(_read_for_fingerprint(warehouse, table, columns))


def day_fingerprints(warehouse: Warehouse, table: str, columns: Sequence[str]) -> dict[str, tuple[int, str]]:
    """`table_fingerprint` of each UTC day of `ts` (which `columns` must include)."""
    frame = _read_for_fingerprint(warehouse, table, columns)
    return {day: _fingerprint(rows) for day, rows in frame.groupby(frame["ts"].str[:10])}


def _read_for_fingerprint(warehouse: Warehouse, table: str, columns: Sequence[str]) -> pd.DataFrame:
    frame = warehouse.query(f"SELECT {', '.join(columns)} FROM {table}")
    if "ts" in frame.columns:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S")
    return frame


def _fingerprint(frame: pd.DataFrame) -> tuple[int, str]:
    text = frame.astype(str).sort_values(list(frame.columns)).to_csv(index=False)
    return len(frame), hashlib.sha256(text.encode()).hexdigest()


def metadata(result: ExecuteInProcessResult) -> dict:
    event = result.get_asset_materialization_events()[0]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("crypto-assets: error: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def recorded_run(
    instance: DagsterInstance,
    key: str,
    checks: dict[str, bool],
    severity: AssetCheckSeverity = AssetCheckSeverity.WARN,
) -> None:
    """What a run of asset `key` records for the automation: its materialization and its checks'
    results in one run (a check result of the same run counts for that materialization). The
    asset's body is a stand-in."""

    @asset(key=key, check_specs=[AssetCheckSpec(name, asset=key) for name in checks])
    def stand_in():
        yield MaterializeResult()
        for name, passed in checks.items():
            yield AssetCheckResult(check_name=name, passed=passed, severity=severity)

    assert materialize([stand_in], instance=instance).success


def wait_for_http(url: str, process, timeout: float = 180) -> None:
    """Until `url` answers 200 on loopback; fails with the log's tail when `process` (a
    crypto_assets_tests.processes.Process) exits first or the time is up."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.popen.poll() is None, process.tail()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s\n{process.tail()}")


@contextmanager
def local_mlflow_server(folder: Path) -> Iterator[str]:
    """A real MLflow tracking server on loopback (SQLite store and proxied artifacts in `folder`),
    answering when the block starts and stopped when it ends; yields its host:port."""
    from crypto_assets_tests.processes import free_port, start, stop

    port = free_port()
    command = [
        str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"),
    ]  # fmt: skip
    server = start("mlflow", command, {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}, folder)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", server)
        yield f"127.0.0.1:{port}"
    finally:
        stop([server])
