"""The production topology: docker-compose.yml, deploy/dagster.yaml and deploy/workspace.yaml.

Three levels: the files' structure (always), the instance config opened by Dagster itself on a
fresh PostgreSQL database (needs CRYPTO_ASSETS_TEST_POSTGRES_URL), and the compose services'
processes started directly, without Docker (slow).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from crypto_assets_tests.pg import dagster_pg_env, temporary_database
from crypto_assets_tests.processes import (
    DEADLINE_SECONDS,
    STATUS_QUERY,
    Process,
    free_port,
    graphql,
    grpc_serving,
    local_command,
    location_state,
    server_info,
    start,
    stop,
    unhealthy_daemons,
)
from crypto_assets_tests.topology import CONTRACT_ENV, DEPLOY, REPO

CONTAINER_HOME = "/opt/dagster/home"
CONTRACT_VARS = CONTRACT_ENV
PG_VARS = tuple(dagster_pg_env("postgresql://u@h/d"))
DAGSTER_SERVICES = ("code", "webserver", "daemon")
LOCATION = "crypto_assets"


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(REPO / "docker-compose.yml")


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        env = dict(item.split("=", 1) for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command(service: Mapping[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


def option(cmd: list[str], *names: str) -> str | None:
    for i, part in enumerate(cmd[:-1]):
        if part in names:
            return cmd[i + 1]
    return None


def database_of(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


# --- docker-compose.yml ------------------------------------------------------------------------


def test_compose_declares_the_production_services(services: dict[str, Any]) -> None:
    assert {"postgres", "code", "webserver", "daemon", "mlflow"} <= set(services)
    for name in DAGSTER_SERVICES:
        build = services[name]["build"]
        assert build["dockerfile"] == "deploy/Dockerfile", name
    assert (REPO / "deploy/Dockerfile").is_file()
    mlflow_build = services["mlflow"].get("build")
    if mlflow_build:
        assert (REPO / mlflow_build["context"] / mlflow_build["dockerfile"]).is_file()


@pytest.mark.parametrize("name", DAGSTER_SERVICES)
def test_crypto_assets_services_get_the_configuration_contract(services: dict[str, Any], name: str) -> None:
    env = environment(services[name])
    missing = [var for var in (*CONTRACT_VARS, *PG_VARS, "DAGSTER_HOME") if var not in env]
    assert not missing, f"{name} lacks {missing}"
    assert env["DAGSTER_HOME"] == CONTAINER_HOME
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["DAGSTER_PG_HOST"] == "postgres"
    warehouse = env["CRYPTO_ASSETS_WAREHOUSE_URL"]
    assert warehouse.startswith("postgresql"), warehouse
    assert "@postgres:5432/" in warehouse, warehouse


@pytest.mark.parametrize("name", DAGSTER_SERVICES)
def test_dagster_services_use_the_deploy_instance(services: dict[str, Any], name: str) -> None:
    mounts = [str(volume) for volume in services[name].get("volumes", [])]
    target = f"./deploy/dagster.yaml:{CONTAINER_HOME}/dagster.yaml"
    assert any(m == target or m.startswith(f"{target}:") for m in mounts), mounts
    dockerfile = (REPO / "deploy/Dockerfile").read_text()
    assert re.search(r"^COPY deploy/dagster.yaml \S*dagster.yaml$", dockerfile, re.M)


def test_compose_commands_ports_and_workspace(services: dict[str, Any]) -> None:
    code = command(services["code"])
    assert code[:3] == ["dagster", "code-server", "start"]
    assert option(code, "-m", "--module-name") == "crypto_assets.definitions"
    assert option(code, "-h", "--host") == "0.0.0.0"
    code_port = int(option(code, "-p", "--port") or 0)

    web = command(services["webserver"])
    assert web[0] == "dagster-webserver"
    assert option(web, "-w", "--workspace") == "deploy/workspace.yaml"
    assert option(web, "-p", "--port") == "3000"
    assert "3000:3000" in [str(port) for port in services["webserver"]["ports"]]

    daemon = command(services["daemon"])
    assert daemon[:2] == ["dagster-daemon", "run"]
    assert option(daemon, "-w", "--workspace") == "deploy/workspace.yaml"

    mlflow = command(services["mlflow"])
    assert mlflow[:2] == ["mlflow", "server"]
    assert option(mlflow, "--port") == "5000"
    assert (option(mlflow, "--backend-store-uri") or "").startswith("postgresql")
    assert "5000:5000" in [str(port) for port in services["mlflow"]["ports"]]
    artifacts = option(mlflow, "--artifacts-destination") or ""
    assert any(str(v).endswith(f":{artifacts}") for v in services["mlflow"]["volumes"])

    (entry,) = load_yaml(DEPLOY / "workspace.yaml")["load_from"]
    grpc = entry["grpc_server"]
    assert (grpc["host"], grpc["port"], grpc["location_name"]) == ("code", code_port, LOCATION)


def test_compose_dependencies_healthchecks_and_restarts(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dependency, spec in depends.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert spec.get("condition") in {
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            }, (name, dependency)
    for name in ("code", "webserver", "daemon", "mlflow"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["code"]["condition"] == "service_healthy"


def test_postgres_init_creates_every_database_the_services_use(services: dict[str, Any]) -> None:
    mounts = [str(volume) for volume in services["postgres"]["volumes"]]
    assert any(m.startswith("./deploy/postgres-init.sql:/docker-entrypoint-initdb.d/") for m in mounts), (
        mounts
    )
    sql = (DEPLOY / "postgres-init.sql").read_text()
    created = set(re.findall(r"^\s*CREATE DATABASE\s+(\w+)", sql, re.M | re.I))
    env = environment(services["code"])
    used = {
        env["DAGSTER_PG_DB"],
        database_of(env["CRYPTO_ASSETS_WAREHOUSE_URL"]),
        database_of(option(command(services["mlflow"]), "--backend-store-uri") or ""),
    }
    assert used <= created, f"used {used}, created {created}"
    assert len(used) == 3, "warehouse, dagster and mlflow need separate databases"


def test_compose_config_when_docker_compose_is_available() -> None:
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode
    ):
        pytest.skip("`docker compose` is not available here; the YAML checks above still ran")
    result = subprocess.run(
        [docker, "compose", "-f", str(REPO / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "POSTGRES_PASSWORD": "test"},
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- deploy/dagster.yaml -----------------------------------------------------------------------


def test_instance_config_is_valid_dagster_config() -> None:
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(str(DEPLOY))  # validates against Dagster's schema
    db = config["storage"]["postgres"]["postgres_db"]
    connection = {key: db[key] for key in ("hostname", "port", "username", "password", "db_name")}
    assert connection == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }
    assert db["scheme"] == "postgresql+psycopg2"  # see the comment in deploy/dagster.yaml
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["telemetry"]["enabled"] is False
    assert config["run_monitoring"]["enabled"] is True
    assert config["concurrency"]["runs"]["max_concurrent_runs"] >= 1
    assert config["concurrency"]["pools"]["default_limit"] >= 1


@pytest.fixture
def postgres_dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A DAGSTER_HOME holding deploy/dagster.yaml, on a fresh database; env vars set."""
    with temporary_database("crypto_assets_test_topology") as url:
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        for var, value in dagster_pg_env(url).items():
            monkeypatch.setenv(var, value)
        yield home


@pytest.mark.postgres
def test_deploy_instance_opens_on_postgres(postgres_dagster_home: Path) -> None:
    import dagster as dg
    from dagster._core.events import DagsterEventType
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    @dg.op
    def noop() -> None:
        pass

    @dg.job
    def topology_probe() -> None:
        noop()

    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_monitoring_enabled
        assert not instance.telemetry_enabled
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1

        run = instance.create_run_for_job(job_def=topology_probe)
        instance.report_engine_event("topology probe", run)
        stored = instance.get_run_by_id(run.run_id)
        assert stored is not None
        assert stored.job_name == "topology_probe"
        assert stored.status == dg.DagsterRunStatus.NOT_STARTED
        events = instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
        assert [event.message for event in events] == ["topology probe"]


@pytest.mark.slow
@pytest.mark.postgres
def test_compose_processes_serve_the_code_location(
    services: dict[str, Any], postgres_dagster_home: Path, tmp_path: Path
) -> None:
    bin_dir = Path(sys.executable).parent
    code_port, web_port = free_port(), free_port()
    workspace = load_yaml(DEPLOY / "workspace.yaml")
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=code_port)
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    env = {k: v for k, v in os.environ.items() if k not in CONTRACT_VARS}
    env.update(
        CRYPTO_ASSETS_HOME=str(tmp_path / "crypto_assets_home"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DO_NOT_TRACK="1",
    )
    # the compose services' commands, on local ports and with this tmp workspace
    ports = {"code": str(code_port), "webserver": str(web_port), "daemon": ""}
    commands = {
        name: local_command(
            command(services[name]),
            {"-h": "127.0.0.1", "-p": port, "-w": "workspace.yaml"},
            bin_dir,
        )
        for name, port in ports.items()
    }
    processes: list[Process] = []
    started = time.monotonic()
    try:
        # like compose: webserver and daemon start once the code service is healthy
        deadline = started + DEADLINE_SECONDS
        processes.append(start("code", commands.pop("code"), env, tmp_path))
        while not grpc_serving(code_port):
            assert processes[0].popen.poll() is None, processes[0].tail()
            assert time.monotonic() < deadline, f"code server not serving\n{processes[0].tail()}"
            time.sleep(0.5)
        code_ready = time.monotonic() - started
        for name, args in commands.items():
            processes.append(start(name, args, env, tmp_path))
        state, waiting = "NOT ASKED", ["?"]
        keys: set[str] = set()
        while time.monotonic() < deadline:
            dead = [p for p in processes if p.popen.poll() is not None]
            assert not dead, "\n".join(p.tail() for p in processes)
            if server_info(web_port) is not None:
                data = graphql(web_port, STATUS_QUERY)
                state, keys = location_state(data)
                if state.startswith("ERROR"):
                    pytest.fail(f"{state}\n{processes[0].tail()}")
                waiting = unhealthy_daemons(data)
                if state == "LOADED" and not waiting:
                    break
            time.sleep(1)
        else:
            logs = "\n".join(p.tail() for p in processes)
            pytest.fail(
                f"not ready in {DEADLINE_SECONDS}s: location {state}, daemons not healthy {waiting}\n{logs}"
            )
        assert "raw_ohlc" in keys, sorted(keys)
        statuses = graphql(web_port, STATUS_QUERY)["instance"]["daemonHealth"]
        types = {s["daemonType"] for s in statuses["allDaemonStatuses"] if s["healthy"]}
        # present because deploy/dagster.yaml enables them
        assert {"QUEUED_RUN_COORDINATOR", "MONITORING", "SCHEDULER", "SENSOR"} <= types
        ready = time.monotonic() - started
        print(f"code serving after {code_ready:.1f}s, all ready after {ready:.1f}s")
    finally:
        stubborn = stop(list(reversed(processes)))
    assert not stubborn, f"needed SIGKILL: {stubborn}"
