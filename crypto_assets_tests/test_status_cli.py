"""`crypto-assets status` as a monitor runs it: exit 0 on a healthy deployment, 1 on a stale or a
failing one, nothing on stderr but the verdict.

The instance is a real DAGSTER_HOME: raw_ohlc is loaded by real runs of the asset from the
synthetic market; every other asset of the code location is recorded as materialized just now
(the models with the metadata their training writes), as if the automation had kept up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetMaterialization, DagsterInstance

from crypto_assets_tests.helpers import SCRIPT, SIX, materialize_raw


def status(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SCRIPT, "status", *args], capture_output=True, text=True, timeout=120, env=os.environ
    )


@pytest.fixture
def instance(home: Path):
    from crypto_assets.cli.instance import ensure_dagster_home

    ensure_dagster_home()
    with DagsterInstance.get() as instance:
        yield instance


def load(instance: DagsterInstance, home: Path, first: str, last: str, **kwargs) -> bool:
    url = f"duckdb:///{home / 'warehouse.duckdb'}"
    return materialize_raw(url, first_day=first, last_day=last, instance=instance, **kwargs).success


def record_the_rest(instance: DagsterInstance, *, at: dict[str, datetime] | None = None) -> None:
    """Every asset but raw_ohlc materialized now (or at `at[asset]`); each model with a promoted
    champion."""
    from dagster._core.test_utils import freeze_time

    from crypto_assets.code_location import build_defs
    from crypto_assets.models.assets import models_by_labels
    from crypto_assets.settings import load_settings

    models = set(models_by_labels().values())
    for node in build_defs(load_settings()).resolve_asset_graph().asset_nodes:
        if node.key.to_user_string() == "raw_ohlc":
            continue
        metadata = (
            {"promotion": "promoted", "model_version": 1, "oos_auc": 0.61} if node.key in models else {}
        )
        with freeze_time((at or {}).get(node.key.to_user_string(), datetime.now(UTC))):
            instance.report_runless_asset_event(AssetMaterialization(node.key, metadata=metadata))


def days_ago(n: int) -> str:
    return (datetime.now(UTC) - timedelta(days=n)).date().isoformat()


def test_healthy_then_failing(instance: DagsterInstance, home: Path):
    assert load(instance, home, days_ago(1), days_ago(0))  # yesterday too: just after midnight
    record_the_rest(instance)
    healthy = status()
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stderr == ""  # no library warning, no progress bar
    assert "dca_model" in healthy.stdout and "0.61" in healthy.stdout
    document = json.loads(status("--json").stdout)
    assert document["healthy"] is True and document["problems"] == []
    assert {m["model"]: m["champion_version"] for m in document["models"]} == {
        "dca_model": 1,
        "swing_model": 1,
        "channel_model": 1,
    }

    # a run of raw_ohlc fails (here: asked for a symbol that is not configured)
    assert not load(instance, home, days_ago(0), days_ago(0), only=["XRP-USD"])
    failing = status()
    assert failing.returncode == 1
    (verdict,) = failing.stderr.splitlines()
    assert verdict.startswith("unhealthy: ") and "XRP-USD" in verdict
    # it stays a problem until raw_ohlc is written again
    assert load(instance, home, days_ago(0), days_ago(0))
    assert status().returncode == 0


def test_a_stale_asset_makes_status_fail_and_a_late_one_does_not(instance: DagsterInstance, home: Path):
    """Each asset against its own freshness policy: features (4 bars + 15 min to stale) last
    written 2 hours ago is stale; a model (stale after 8 days) trained 7.5 days ago is late."""
    assert load(instance, home, days_ago(1), days_ago(0))
    now = datetime.now(UTC)
    record_the_rest(
        instance, at={"features": now - timedelta(hours=2), "dca_model": now - timedelta(days=7.5)}
    )
    stale = status("--json")
    assert stale.returncode == 1
    document = json.loads(stale.stdout)
    states = {a["asset"]: a["state"] for a in document["assets"]}
    assert states["features"] == "stale" and states["dca_model"] == "late" and states["raw_ohlc"] == "fresh"
    assert "features stale" in document["problems"]
    assert not any("dca_model" in problem for problem in document["problems"])
    (verdict,) = status().stderr.splitlines()
    assert verdict.startswith("unhealthy: ") and "features stale" in verdict


def test_an_old_day_backfilled_leaves_the_asset_fresh_and_the_symbols_stale(
    instance: DagsterInstance, home: Path
):
    """Dagster's freshness is per asset: a backfill of an old day makes raw_ohlc look fresh.
    The symbols' newest bars are old, and status says so."""
    assert load(instance, home, days_ago(3), days_ago(3))
    record_the_rest(instance)
    stale = status("--json")
    assert stale.returncode == 1
    document = json.loads(stale.stdout)
    assert {a["asset"]: a["state"] for a in document["assets"]}["raw_ohlc"] == "fresh"
    assert {f"symbol {symbol} stale" for symbol in SIX.split(",")} <= set(document["problems"])
    check = {c["check"]: c for c in document["checks"]}["raw_ohlc:symbol_freshness"]
    assert check["status"] == "failed" and "BTC-USD" in check["description"]


def test_a_warehouse_held_by_a_writer_leaves_the_rest_of_status_standing(
    instance: DagsterInstance, home: Path
):
    """On DuckDB a run writing the file locks everyone else out; status still reports what Dagster
    recorded, says why the symbols were not checked, and does not count that as a problem."""
    assert load(instance, home, days_ago(1), days_ago(0))
    record_the_rest(instance)
    hold = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.read()"
    holder = subprocess.Popen(  # a writer: holds the file until told to stop
        [sys.executable, "-c", hold, str(home / "warehouse.duckdb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = status()
        document = json.loads(status("--json").stdout)
    finally:
        holder.communicate("", timeout=30)
    assert busy.returncode == 0, busy.stdout + busy.stderr
    assert f"is held by process {holder.pid}" in busy.stdout
    assert "dca_model" in busy.stdout  # Dagster's view is all there
    assert document["healthy"] is True and document["symbols"] == []
    assert any("symbols not checked" in warning for warning in document["warnings"])
    assert status().returncode == 0  # and once the writer is gone, the symbols are back


def test_a_symbol_is_stale_by_the_window_of_its_freshness_check(instance: DagsterInstance, home: Path):
    """One definition of a stale symbol: status judges by raw_ohlc's window (4 bars + 5 min), as
    the symbol_freshness check does, not by a window of its own."""
    import sqlalchemy as sa

    from crypto_assets.warehouse import Warehouse

    assert load(instance, home, days_ago(1), days_ago(0))
    record_the_rest(instance)
    # each symbol's newest three bars gone: its newest bar closed 3 to 4 bars ago
    with Warehouse(f"duckdb:///{home / 'warehouse.duckdb'}") as db, db.begin() as connection:
        connection.execute(
            sa.text(
                "DELETE FROM raw_ohlc WHERE ts >= (SELECT max(ts) FROM raw_ohlc newest "
                "WHERE newest.symbol = raw_ohlc.symbol) - INTERVAL '30 minutes'"
            )
        )
    late = status("--json")
    document = json.loads(late.stdout)
    assert {row["symbol"]: row["state"] for row in document["symbols"]} == dict.fromkeys(SIX.split(","), "ok")
    assert late.returncode == 0, late.stderr
    check = {c["check"]: c for c in document["checks"]}["raw_ohlc:symbol_freshness"]
    assert check["status"] == "passed"
