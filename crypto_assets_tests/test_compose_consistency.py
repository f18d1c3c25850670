"""docker-compose.yml and the Dockerfiles against the process list the end-to-end test starts
(crypto_assets_tests/topology.py): a service, command, environment name or instance setting
that differs fails here, so what compose runs is what the slow test ran."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from crypto_assets_tests.topology import BY_NAME, DAGSTER_ENV, SERVICES

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]


def test_compose_runs_exactly_the_tested_services(services: dict[str, Any]) -> None:
    assert set(services) - {"postgres"} == set(BY_NAME)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_compose_command_is_the_tested_command(services: dict[str, Any], service: Any) -> None:
    assert [str(part) for part in services[service.name]["command"]] == list(service.command)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_compose_environment_names_are_the_tested_names(services: dict[str, Any], service: Any) -> None:
    names = set(services[service.name].get("environment") or {})
    assert sorted(names - set(service.environment)) == [], "in compose, not tested"
    assert sorted(set(service.environment) - names) == [], "tested, not in compose"


@pytest.mark.parametrize("name", ["code", "webserver", "daemon"])
def test_dagster_services_share_the_image_and_the_tested_instance(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert service["image"] == services["code"]["image"]
    mounts = [str(volume).rsplit(":ro", 1)[0] for volume in service["volumes"]]
    assert "./deploy/dagster.yaml:/opt/dagster/home/dagster.yaml" in mounts
    assert "./deploy/workspace.yaml:/opt/dagster/app/deploy/workspace.yaml" in mounts
    assert service["environment"]["DAGSTER_HOME"] == "/opt/dagster/home"


def test_dagster_image_holds_the_tested_instance_and_workspace() -> None:
    dockerfile = (REPO / "deploy/Dockerfile").read_text()
    assert "DAGSTER_HOME=/opt/dagster/home " in dockerfile
    assert re.search(r"^COPY deploy/dagster.yaml \$DAGSTER_HOME/dagster.yaml$", dockerfile, re.M)
    assert re.search(r"^COPY deploy/workspace.yaml \./deploy/workspace.yaml$", dockerfile, re.M)
    assert re.search(r"^WORKDIR /opt/dagster/app$", dockerfile, re.M)
    assert "requirements.lock" in dockerfile  # the versions the tests ran


def pins(path: Path) -> dict[str, str | None]:
    """name -> pinned version (None: unpinned) of a requirements or constraints file."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            found[name.strip().lower().replace("_", "-")] = pinned.strip() or None
    return found


def test_mlflow_image_installs_the_locked_mlflow_and_boto3() -> None:
    """The server runs the MLflow the tests ran (the lock's), its PostgreSQL driver, and boto3 for
    artifacts in object storage, every version pinned."""
    dockerfile = (REPO / "deploy/mlflow.Dockerfile").read_text()
    assert re.search(
        r"^COPY requirements\.lock deploy/mlflow-requirements\.txt /tmp/install/$", dockerfile, re.M
    )
    assert (
        "pip install -c /tmp/install/requirements.lock -r /tmp/install/mlflow-requirements.txt" in dockerfile
    )
    assert dockerfile.count("pip install") == 1  # nothing installed around the lock
    lock = pins(REPO / "requirements.lock")
    wanted = pins(REPO / "deploy/mlflow-requirements.txt")
    assert lock["mlflow"] == version("mlflow")  # the lock holds the MLflow this suite runs
    assert wanted["mlflow"] is None and wanted["psycopg2-binary"] is None, "their version is the lock's"
    assert lock["psycopg2-binary"]  # the backend store URI's driver, pinned by the lock
    extra = {name: pinned for name, pinned in wanted.items() if name not in lock}
    assert set(extra) == {"boto3", "botocore", "s3transfer", "jmespath"}
    assert all(extra.values()), "what the lock does not pin is pinned here"
    assert extra["boto3"].split(".")[:2] == extra["botocore"].split(".")[:2]  # boto3 needs its minor


def test_process_list_names_every_contract_variable() -> None:
    assert len(set(DAGSTER_ENV)) == len(DAGSTER_ENV)
    assert {"CRYPTO_ASSETS_WAREHOUSE_URL", "MLFLOW_TRACKING_URI", "DAGSTER_PG_DB"} <= set(DAGSTER_ENV)
