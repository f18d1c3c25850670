"""A backfill killed with SIGKILL mid-way leaves every day old or new, and a re-run ends exactly like
a clean run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance

from crypto_assets.warehouse import Warehouse
from crypto_assets_tests.helpers import SCRIPT, day_fingerprints, materialize_raw, table_fingerprint

SYMBOLS = ",".join(f"S{i:02d}-USD" for i in range(60))
DAYS = 12
COLUMNS = ["exchange", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]


def _days_written(instance: DagsterInstance) -> int:
    runs = instance.get_runs(limit=1)
    if not runs:
        return 0
    try:
        logs = instance.all_logs(runs[0].run_id)
    except Exception:  # the run's event log may not exist yet
        return 0
    return sum(1 for event in logs if " written: " in (event.user_message or ""))


@pytest.mark.slow
def test_sigkill_mid_backfill_then_rerun_equals_clean_run(warehouse_url: str, home: Path, tmp_path: Path):
    """The window already holds another version of the market (seed 1); the backfill replaces it
    day by day (seed 7) and is killed part-way: every day must be wholly old or wholly new."""
    first = (datetime.now(UTC) - timedelta(days=40)).date()
    last = first + timedelta(days=DAYS - 1)
    span = {"first_day": first.isoformat(), "last_day": last.isoformat(), "symbols": SYMBOLS}
    assert materialize_raw(warehouse_url, source="synthetic:1", **span).success
    warehouse = Warehouse(warehouse_url)
    old_days = day_fingerprints(warehouse, "raw_ohlc", COLUMNS)
    warehouse.dispose()
    clean_url = f"duckdb:///{tmp_path / 'clean.duckdb'}"
    assert materialize_raw(clean_url, **span).success
    clean = Warehouse(clean_url)
    new_days = day_fingerprints(clean, "raw_ohlc", COLUMNS)
    assert len(old_days) == len(new_days) == DAYS
    assert all(old_days[day] != new_days[day] for day in new_days), "the two versions must differ"

    env = {**os.environ, "CRYPTO_ASSETS_WAREHOUSE_URL": warehouse_url, "CRYPTO_ASSETS_SYMBOLS": SYMBOLS}
    command = [SCRIPT, "backfill", "--start", first.isoformat(), "--end", last.isoformat()]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        with DagsterInstance.get() as instance:
            deadline = time.monotonic() + 120
            while _days_written(instance) < 3 and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        assert process.poll() is None, "the backfill ended before it could be killed"
    finally:
        # the whole process tree, as an OOM kill or a power loss would
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    killed = day_fingerprints(warehouse, "raw_ohlc", COLUMNS)
    assert set(killed) == set(new_days)
    replaced = [day for day in killed if killed[day] == new_days[day]]
    kept = [day for day in killed if killed[day] == old_days[day]]
    assert len(replaced) + len(kept) == DAYS, "each day is wholly the old or wholly the new version"
    assert 3 <= len(replaced) < DAYS, "killed mid-way: some days replaced, not all"

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    expected = table_fingerprint(clean, "raw_ohlc", COLUMNS)
    assert expected[0] == 60 * 96 * DAYS
    assert table_fingerprint(warehouse, "raw_ohlc", COLUMNS) == expected
    warehouse.dispose()
    clean.dispose()
