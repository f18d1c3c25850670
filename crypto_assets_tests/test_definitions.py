"""The code location loads fast and its graph is what the design says."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, instance_for_test

#: what a webserver, daemon or run worker must not pay for just to load the code location
HEAVY = [
    "pandas", "numpy", "pyarrow", "sqlalchemy", "duckdb", "psycopg", "pgpq", "ccxt", "talib",
    "great_expectations", "mlflow", "sklearn", "scipy", "matplotlib", "skops", "purgedcv",
]  # fmt: skip


@pytest.mark.parametrize("module", HEAVY)
def test_every_heavy_library_is_installed(module: str):
    """Otherwise the probe below would pass for the wrong reason."""
    assert importlib.util.find_spec(module) is not None


def test_loading_the_code_location_imports_no_heavy_library_and_warns_nothing():
    probe = (
        "import sys, crypto_assets.definitions as d; d.defs.get_repository_def();"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    # Python's default warning filters, as in `dagster dev` or a run worker (pytest's are not)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported when the code location loads: {result.stdout.strip()}"
    assert "Warning" not in result.stderr, result.stderr


def test_raw_ohlc_is_daily_partitioned_in_the_ingestion_group_with_its_checks():
    from crypto_assets.definitions import defs

    with instance_for_test():  # resolving definitions consults the current instance
        specs = defs.resolve_all_asset_specs()
        graph = defs.resolve_asset_graph()
    spec = next(s for s in specs if s.key == AssetKey("raw_ohlc"))
    assert spec.group_name == "ingestion"
    assert spec.partitions_def.timezone == "UTC"
    checks = {key.name for key in graph.asset_check_keys if key.asset_key == spec.key}
    assert checks >= {"symbol_coverage", "expectation_suite", "gaps", "outlier_moves"}
    assert spec.freshness_policy is not None
    schedule = defs.resolve_schedule_def("raw_ohlc_after_each_bar")
    assert schedule.cron_schedule == "1,16,31,46 * * * *"


SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def condition_text(condition) -> str | None:
    """An automation condition as its tree of Dagster operators, labels in brackets, e.g.
    `AND[eager](in_latest_time_window, ...)`: any change of a clause shows."""
    if condition is None:
        return None
    label = f"[{condition.get_label()}]" if condition.get_label() else ""
    children = ", ".join(condition_text(child) for child in condition.children)
    return _in_sorted_order(f"{condition.name}{label}") + (f"({children})" if children else "")


_KEYS = re.compile(r'key:"[^"]+"(?: or key:"[^"]+")+')
_CHECK_KEYS = re.compile(r"AssetCheckKey\(asset_key=AssetKey\(\[[^\]]*\]\), name='[^']*'\)")


def _in_sorted_order(name: str) -> str:
    """A selection inside a condition's name lists its keys in set order, which changes from one
    process to the next: sort them."""
    name = _KEYS.sub(lambda m: " or ".join(sorted(m.group(0).split(" or "))), name)
    found = _CHECK_KEYS.findall(name)
    if found:
        joined = ", ".join(found)
        if joined in name:
            name = name.replace(joined, ", ".join(sorted(found)))
    return name


def graph_snapshot() -> dict:
    """What a reviewer should see change: every asset, check, schedule and sensor of `defs`."""
    from crypto_assets.definitions import defs

    with instance_for_test():
        graph = defs.resolve_asset_graph()
        repository = defs.get_repository_def()
    assets = {}
    for node in sorted(graph.asset_nodes, key=lambda n: n.key.to_user_string()):
        policy = node.freshness_policy
        checks = {}
        for key in sorted(node.check_keys, key=lambda k: k.name):
            spec = graph.get_check_spec(key)
            checks[key.name] = {
                "blocking": spec.blocking,
                "automation": condition_text(spec.automation_condition),
            }
        assets[node.key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(key.to_user_string() for key in node.parent_keys),
            "checks": checks,
            "automation": condition_text(node.automation_condition),
            "freshness_fail_window_s": int(policy.fail_window.to_timedelta().total_seconds())
            if policy
            else None,
            "partitioned": node.partitions_def is not None,
            "pool": node.pools and sorted(node.pools),
        }
    sensors = {}
    for sensor in repository.sensor_defs:
        selection = getattr(sensor, "asset_selection", None)
        target = sorted(k.to_user_string() for k in selection.resolve(graph)) if selection else None
        sensors[sensor.name] = {
            "default_status": sensor.default_status.value,
            "job": sensor.job_name if sensor.has_jobs else None,
            "targets": target,
        }
    return {
        "assets": assets,
        "schedules": {
            s.name: {"cron": s.cron_schedule, "default_status": s.default_status.value, "job": s.job_name}
            for s in repository.schedule_defs
        },
        "sensors": sensors,
    }


SNAPSHOT_PROBE = (
    "import json; from crypto_assets_tests.test_definitions import graph_snapshot; "
    "print(json.dumps(graph_snapshot(), indent=2, sort_keys=True))"
)


def snapshot_of_the_default_code_location(tmp_path: Path) -> dict:
    """`graph_snapshot()` of `crypto_assets.definitions` loaded as Dagster loads it, in a fresh
    process with none of the project's variables set: the documented defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTO_ASSETS_", "MLFLOW_"))}
    env["CRYPTO_ASSETS_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-c", SNAPSHOT_PROBE], capture_output=True, text=True, env=env, timeout=180
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_graph_matches_its_reviewed_snapshot(tmp_path: Path):
    """Any change to the graph (an asset, a dep, a check, a sensor dropped or switched off) shows
    here and in review. After an intended change: CRYPTO_ASSETS_UPDATE_SNAPSHOT=1 pytest -k snapshot."""
    current = snapshot_of_the_default_code_location(tmp_path)
    if os.environ.get("CRYPTO_ASSETS_UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_runs_execute_their_steps_in_the_run_worker_one_pool_slot_at_a_time():
    """Every step is in the warehouse pool, whose one slot runs them one at a time: a process per
    step (Dagster's default executor) would buy no parallelism, only a start-up each."""
    from dagster import in_process_executor

    from crypto_assets.definitions import defs
    from crypto_assets.names import WAREHOUSE_POOL

    with instance_for_test():
        jobs = defs.get_repository_def().get_all_jobs()
    assert {job.name for job in jobs} >= {"refresh_raw_ohlc", "repair_raw_ohlc", "__ASSET_JOB"}
    for job in jobs:
        assert job.executor_def is in_process_executor, job.name
        pools = {node.name: node.definition.pool for node in job.graph.nodes}
        assert set(pools.values()) == {WAREHOUSE_POOL}, (job.name, pools)


@pytest.mark.parametrize("timeframe", ["15m", "1h"])
def test_every_asset_has_a_freshness_policy_that_fits_its_cadence(tmp_path: Path, timeframe: str):
    """The models retrain weekly: fresh within a week, stale within a day after a missed retrain.
    Everything else follows each base bar: late after two bars, stale within five."""
    from datetime import timedelta

    from crypto_assets.code_location import build_defs
    from crypto_assets.models.assets import models_by_labels
    from crypto_assets.settings import load_settings

    settings = load_settings({"CRYPTO_ASSETS_HOME": str(tmp_path), "CRYPTO_ASSETS_TIMEFRAME": timeframe})
    with instance_for_test():
        graph = build_defs(settings).resolve_asset_graph()
    bar, week = settings.timeframe.delta, timedelta(days=7)
    models = set(models_by_labels().values())
    windows = {}
    for node in graph.asset_nodes:
        policy = node.freshness_policy
        assert policy is not None, f"{node.key.to_user_string()} has no freshness policy"
        windows[node.key] = (policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta())
    assert models <= set(windows) and len(windows) > len(models) + 5  # dbt models, features, ...
    for key, (warn, fail) in windows.items():
        if key in models:
            assert week < warn < fail <= week + timedelta(days=1), key
        else:
            assert 2 * bar <= warn < fail <= 5 * bar, key
