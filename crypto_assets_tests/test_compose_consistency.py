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


def test_mlflow_image_runs_the_tested_mlflow_major_with_a_postgresql_driver() -> None:
    dockerfile = (REPO / "deploy/mlflow.Dockerfile").read_text()
    (spec,) = re.findall(r'"mlflow([^"]*)"', dockerfile)
    major = int(version("mlflow").split(".")[0])
    assert f"<{major + 1}" in spec, spec
    assert "psycopg2" in dockerfile  # the backend store URI's driver


def test_process_list_names_every_contract_variable() -> None:
    assert len(set(DAGSTER_ENV)) == len(DAGSTER_ENV)
    assert {"CRYPTO_ASSETS_WAREHOUSE_URL", "MLFLOW_TRACKING_URI", "DAGSTER_PG_DB"} <= set(DAGSTER_ENV)
