"""How the dbt project is wired into Dagster, without running dbt models: the graph, the checks,
the automation, the profile derived from CRYPTO_ASSETS_WAREHOUSE_URL, and the manifest per base
timeframe."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DefaultSensorStatus,
)

from crypto_assets.errors import UserError
from crypto_assets.market import Timeframe
from crypto_assets.names import WAREHOUSE_POOL
from crypto_assets.transform.__main__ import main as dbt_by_hand
from crypto_assets.transform.assets import (
    AUTOMATION_SENSOR,
    FULL_REFRESH_TAG,
    TRANSFORM_GROUP,
    DbtBuildConfig,
    Transform,
    build_transform,
    wants_full_refresh,
)
from crypto_assets.transform.dbt_profile import warehouse_env
from crypto_assets.transform.launcher import HANDOFF, take_handoff, write_handoff
from crypto_assets.transform.project import DbtSetup

BASE = Timeframe.parse("15m")
MODELS = {"ohlc_1h", "ohlc_4h", "ohlc_1d", "ohlc_today", "ohlc_recent"}
SHARED_CHECKS = {"unique_bar_key", "no_nulls", "ohlc_consistent", "volume_non_negative"}
RESAMPLED_CHECKS = SHARED_CHECKS | {"bar_count_in_range"}
WINDOW_CHECKS = SHARED_CHECKS | {"within_window"}


@pytest.fixture(scope="module")
def transform() -> Transform:
    return build_transform(DbtSetup(BASE), "duckdb:///unused.duckdb")


def test_models_sit_downstream_of_raw_ohlc_in_the_transform_group(transform: Transform):
    [dbt] = transform.assets
    assert {key.to_user_string() for key in dbt.keys} == MODELS
    for key in dbt.keys:
        spec = dbt.specs_by_key[key]
        assert [dep.asset_key for dep in spec.deps] == [AssetKey("raw_ohlc")]
        assert spec.group_name == TRANSFORM_GROUP
        assert spec.automation_condition is not None
    assert dbt.op.pools == {WAREHOUSE_POOL}
    assert set(transform.resources) == {"dbt"}


def test_dbt_tests_are_asset_checks_on_their_models(transform: Transform):
    [dbt] = transform.assets
    checks: dict[str, set[str]] = {}
    for key in dbt.check_keys:
        checks.setdefault(key.asset_key.to_user_string(), set()).add(key.name)
    assert checks == {
        "ohlc_1h": RESAMPLED_CHECKS, "ohlc_4h": RESAMPLED_CHECKS, "ohlc_1d": RESAMPLED_CHECKS,
        "ohlc_today": WINDOW_CHECKS, "ohlc_recent": WINDOW_CHECKS,
    }  # fmt: skip


def test_the_automation_sensor_is_on_and_targets_the_models():
    from crypto_assets.definitions import defs

    sensor = defs.resolve_sensor_def(AUTOMATION_SENSOR)  # the code location's, not one built here
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    targeted = sensor.asset_selection.resolve(defs.resolve_asset_graph())
    assert {key.to_user_string() for key in targeted} == MODELS


def test_code_location_includes_the_models_and_the_sensor():
    from crypto_assets.definitions import defs

    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert MODELS | {"raw_ohlc"} <= keys
    assert AUTOMATION_SENSOR in {sensor.name for sensor in defs.sensors}


def test_profile_env_for_duckdb_is_an_absolute_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    env = warehouse_env("duckdb:///rel/warehouse.duckdb")
    assert env == {
        "DBT_WAREHOUSE_TARGET": "duckdb",
        "DBT_WAREHOUSE_DUCKDB_PATH": str(tmp_path / "rel" / "warehouse.duckdb"),
    }
    with pytest.raises(UserError, match="in-memory"):
        warehouse_env("duckdb:///:memory:")


def test_profile_env_for_postgres_keeps_the_password_secret_and_sessions_utc():
    env = warehouse_env(
        "postgresql://ca:s%40cret@db.example:6543/market?sslmode=require", {"PGOPTIONS": "-c work_mem=64MB"}
    )
    assert env == {
        "DBT_WAREHOUSE_TARGET": "postgres",
        "DBT_WAREHOUSE_PG_HOST": "db.example",
        "DBT_WAREHOUSE_PG_PORT": "6543",
        "DBT_WAREHOUSE_PG_USER": "ca",
        "DBT_ENV_SECRET_WAREHOUSE_PG_PASSWORD": "s@cret",
        "DBT_WAREHOUSE_PG_DBNAME": "market",
        "DBT_WAREHOUSE_PG_SSLMODE": "require",
        "PGOPTIONS": "-c work_mem=64MB -c TimeZone=UTC -c jit=off",
    }
    defaults = warehouse_env("postgresql://127.0.0.1/postgres", {})
    assert (defaults["DBT_WAREHOUSE_PG_USER"], defaults["DBT_WAREHOUSE_PG_PORT"]) == ("postgres", "5432")
    with pytest.raises(UserError, match="application_name"):
        warehouse_env("postgresql://127.0.0.1/postgres?application_name=x")


def test_the_profile_handoff_is_private_and_read_once(tmp_path: Path):
    """What an invocation hands its dbt process (the launcher) holds the password: owner-only,
    and gone once read."""
    path = write_handoff(tmp_path, {"DBT_ENV_SECRET_WAREHOUSE_PG_PASSWORD": "s@cret"})
    assert path == tmp_path / HANDOFF
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):  # never written over, so never another invocation's file
        write_handoff(tmp_path, {})
    assert take_handoff(tmp_path) == {"DBT_ENV_SECRET_WAREHOUSE_PG_PASSWORD": "s@cret"}
    assert not path.exists()
    assert take_handoff(tmp_path) == {}


def test_every_dbt_command_gets_the_base_timeframe():
    assert DbtSetup(Timeframe.parse("1h")).command(["build", "--select", "ohlc_1h"])[-2:] == [
        "--vars",
        json.dumps({"base_timeframe": "1h"}),
    ]
    assert "--vars" not in DbtSetup(BASE).command(["clean"])
    assert DbtSetup(BASE).command(["run", "--vars", "{}"]).count("--vars") == 1


def test_full_refresh_from_run_config_or_run_tag():
    assert not wants_full_refresh(DbtBuildConfig(), {})
    assert wants_full_refresh(DbtBuildConfig(full_refresh=True), {})
    assert wants_full_refresh(DbtBuildConfig(), {FULL_REFRESH_TAG: "true"})
    assert not wants_full_refresh(DbtBuildConfig(), {FULL_REFRESH_TAG: "false"})


def test_by_hand_env_exports_the_profile_of_the_configured_warehouse(
    home: Path, capsys: pytest.CaptureFixture[str]
):
    assert dbt_by_hand(["env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    assert exports["DBT_WAREHOUSE_TARGET"] == "duckdb"
    assert exports["DBT_WAREHOUSE_DUCKDB_PATH"] == str(home / "warehouse.duckdb")
    assert exports["DBT_TARGET_PATH"].endswith("target/base_15m/by_hand")


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of dbt_project/ without its target."""
    copy = tmp_path / "dbt_project"
    shutil.copytree(DbtSetup(BASE).project_dir, copy, ignore=shutil.ignore_patterns("target", "logs"))
    return copy


@pytest.mark.slow
def test_resampled_models_follow_the_base_timeframe(project_copy: Path, tmp_path: Path):
    """Only timeframes coarser than the base (and multiples of it) are models; one manifest per base."""
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    enabled = {}
    for base in ("5m", "1h"):
        setup = DbtSetup(Timeframe.parse(base), project_dir=project_copy)
        manifest = json.loads(setup.prepare_manifest(url).read_text())
        assert manifest["metadata"]["adapter_type"] == "duckdb"
        enabled[base] = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert enabled["5m"] == {"ohlc_15m", "ohlc_1h", "ohlc_4h", "ohlc_1d", "ohlc_today", "ohlc_recent"}
    assert enabled["1h"] == {"ohlc_4h", "ohlc_1d", "ohlc_today", "ohlc_recent"}
    assert (project_copy / "target" / "base_5m" / "manifest.json").exists()

    one_hour = DbtSetup(Timeframe.parse("1h"), project_dir=project_copy)
    assert one_hour.manifest_is_current()
    model = project_copy / "models" / "resampled" / "ohlc_4h.sql"
    later = one_hour.manifest_path.stat().st_mtime + 10
    os.utime(model, (later, later))
    assert not one_hour.manifest_is_current(), "an edited model makes the manifest stale"
