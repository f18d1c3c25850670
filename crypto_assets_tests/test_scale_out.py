"""The Kubernetes values (deploy/helm/values.yaml) describe the same deployment as compose.

Image, code-server arguments, environment names and instance settings must agree with
docker-compose.yml and deploy/dagster.yaml; the scale-out guide's secret holds exactly the
secret names. What may differ is listed in deploy/README.md (launcher, run queue size, pools).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from crypto_assets_tests.topology import INSTANCE_ENV

REPO = Path(__file__).resolve().parents[1]
#: the compose names the chart provides itself (instance connection, home of the instance)
CHART_PROVIDED = set(INSTANCE_ENV)


def load(path: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / path).read_text())


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return load("deploy/helm/values.yaml")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load("docker-compose.yml")


@pytest.fixture(scope="module")
def deployment(values: dict[str, Any]) -> dict[str, Any]:
    (only,) = values["dagster-user-deployments"]["deployments"]
    return only


def secret_keys() -> set[str]:
    """The keys the guide's `kubectl create secret generic crypto-assets-secrets` command sets."""
    guide = (REPO / "deploy/README.md").read_text()
    command = guide[guide.index("create secret generic crypto-assets-secrets") :].split("```")[0]
    return set(re.findall(r"--from-literal=([A-Z_]+)=", command))


def test_same_image_and_code_server(compose: dict[str, Any], deployment: dict[str, Any]):
    image = compose["services"]["code"]["image"].split(":")[0]
    assert deployment["image"]["repository"].rsplit("/", 1)[-1] == image
    code = compose["services"]["code"]["command"]
    module = code[code.index("-m") + 1]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == module
    assert str(deployment["port"]) == code[code.index("-p") + 1]


def test_same_environment_names(compose: dict[str, Any], deployment: dict[str, Any]):
    in_compose = set(compose["x-crypto-assets-env"]) - CHART_PROVIDED
    plain = {item["name"] for item in deployment["env"]}
    secret = secret_keys()
    assert not plain & secret, "a name is both a plain value and a secret"
    assert plain | secret == in_compose
    # the secrets are secret in both places: the compose file takes them from .env only
    for name in ("SLACK_WEBHOOK_URL", "CRYPTO_ASSETS_ALERT_WEBHOOK"):
        assert name in secret and str(compose["x-crypto-assets-env"][name]).startswith("${")
    names = {s["name"] for s in deployment["envSecrets"]}
    assert names == {"crypto-assets-secrets"}


def test_runs_get_the_code_location_environment(values: dict[str, Any], deployment: dict[str, Any]):
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    secrets = {s["name"] for s in launcher["config"]["k8sRunLauncher"]["envSecrets"]}
    assert secrets == {s["name"] for s in deployment["envSecrets"]}


def test_same_instance_settings(values: dict[str, Any]):
    instance = load("deploy/dagster.yaml")
    daemon = values["dagsterDaemon"]
    assert instance["run_coordinator"]["class"] == daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    monitoring, k8s_monitoring = instance["run_monitoring"], daemon["runMonitoring"]
    assert monitoring["enabled"] is k8s_monitoring["enabled"] is True
    assert monitoring["start_timeout_seconds"] == k8s_monitoring["startTimeoutSeconds"]
    assert monitoring["poll_interval_seconds"] == k8s_monitoring["pollIntervalSeconds"]
    retries, k8s_retries = instance["run_retries"], daemon["runRetries"]
    assert retries["max_retries"] == k8s_retries["maxRetries"]
    assert retries["retry_on_asset_or_op_failure"] is k8s_retries["retryOnAssetOrOpFailure"] is False
    sensor = instance["retention"]["sensor"]["purge_after_days"]
    assert sensor == values["retention"]["sensor"]["purgeAfterDays"]
    assert (
        instance["retention"]["schedule"]["purge_after_days"]
        == values["retention"]["schedule"]["purgeAfterDays"]
    )
    assert instance["telemetry"]["enabled"] is values["telemetry"]["enabled"] is False
    assert values["postgresql"]["enabled"] is False, "the instance lives in your PostgreSQL"
    assert (
        values["postgresql"]["postgresqlDatabase"]
        == load("docker-compose.yml")["x-crypto-assets-env"]["DAGSTER_PG_DB"]
    )


LIFT = re.compile(r"dagster instance concurrency set (\w+) (\d+)")


def test_the_guide_lifts_the_writer_pool_by_name():
    from crypto_assets.names import WAREHOUSE_POOL

    guide = (REPO / "deploy/README.md").read_text()
    assert f"dagster instance concurrency set {WAREHOUSE_POOL} " in guide


def test_same_pool_settings_and_the_writer_pool_lifted_as_the_guide_says(values: dict[str, Any]):
    """The default pool limit is deploy/dagster.yaml's (and the embedded instance's); the values
    file names the same lift of the writer pool as the guide (the chart cannot set one pool)."""
    from crypto_assets.names import WAREHOUSE_POOL

    instance_pools = load("deploy/dagster.yaml")["concurrency"]["pools"]
    assert values["concurrency"]["enabled"] is True
    assert values["concurrency"]["pools"] == {"defaultLimit": instance_pools["default_limit"]}
    assert (
        instance_pools["default_limit"] == load("dagster.yaml")["concurrency"]["pools"]["default_limit"] == 1
    )
    in_values = LIFT.findall((REPO / "deploy/helm/values.yaml").read_text())
    in_guide = LIFT.findall((REPO / "deploy/README.md").read_text())
    assert in_values == in_guide == [(WAREHOUSE_POOL, in_guide[0][1])]
    assert int(in_guide[0][1]) > instance_pools["default_limit"], "lifted on PostgreSQL"
    # the run queue is the coordinator's, not the chart's concurrency block (the chart refuses both)
    assert "runs" not in values["concurrency"]


def test_the_chart_is_installed_at_the_locked_dagster_version():
    """The chart's webserver and daemon images are Dagster's own of the chart's version; they must
    run the dagster the image's code server runs (requirements.lock)."""
    lock = (REPO / "requirements.lock").read_text()
    (dagster,) = re.findall(r"^dagster==([\d.]+)$", lock, flags=re.MULTILINE)
    for path in ("deploy/README.md", "deploy/helm/values.yaml"):
        text = (REPO / path).read_text()
        installs = re.findall(r"helm upgrade --install dagster dagster/dagster (.*)", text)
        assert installs, path
        assert all(f"--version {dagster} " in install for install in installs), (path, installs)
