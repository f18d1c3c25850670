"""The production topology end to end (slow, PostgreSQL): the processes of
crypto_assets_tests/topology.py (MLflow server on PostgreSQL with proxied artifacts, gRPC code
server, webserver, daemon on deploy/dagster.yaml) with the warehouse on PostgreSQL. A backfill of
raw_ohlc's history is launched through GraphQL; the schedule's next run (today's partition, with
its checks) starts the automation sensors, which carry the candles to strategy_signals. The
schedule fires every 15 minutes, so the test waits up to that long for it. Checked through
GraphQL, the MLflow client and SQL, then in Chromium (screenshots in .artifacts/ui/).

Why not the backfill alone: a single-run backfill over many partitions leaves one PLANNED
execution per partition of each raw_ohlc check beside the one that ran, and the blocking-check
condition of the derived assets then never sees the checks pass (seen here with Dagster 1.13.27).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from crypto_assets_tests.pg import dagster_pg_env, sqlalchemy_url, temporary_database
from crypto_assets_tests.processes import (
    STATUS_QUERY,
    Process,
    free_port,
    graphql,
    grpc_serving,
    location_state,
    server_info,
    start,
    stop,
    unhealthy_daemons,
)
from crypto_assets_tests.topology import BY_NAME, CONTRACT_ENV, DEPLOY

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skip(
        reason="issue 12, open: on a fresh deployment signals_automation runs strategy_signals "
        "before any model has a champion and the run fails ('no strategy has a champion model "
        "yet'), and with 1m bars models_automation ran dca_model before `features` existed "
        '(relation "features" does not exist); un-skip once the automation waits for them'
    ),
]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / ".artifacts" / "ui"
STARTUP_SECONDS = 240
PIPELINE_SECONDS = 900 + 15 * 60  # the chain, after the schedule's next tick
SYMBOLS = "BTC-USD,ETH-USD,SOL-USD"
HISTORY_DAYS = 30  # 15m bars: enough closed labels (models need 1000) for the strategies
STRATEGIES = ("dca", "swing", "channel")
MODELS = tuple(f"{s}_model" for s in STRATEGIES)
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

STEP_FAILURES_QUERY = """
query ($id: ID!) {
  logsForRun(runId: $id) {
    ... on EventConnection { events { ... on ExecutionStepFailureEvent { stepKey error { message } } } }
  }
}
"""
RUNS_QUERY = """
{ runsOrError(limit: 200) { __typename ... on Runs { results { runId status jobName } } } }
"""
ASSETS_QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    assetMaterializations(limit: 1) { runId timestamp }
    assetChecksOrError {
      ... on AssetChecks { checks { name executionForLatestMaterialization { status } } }
    }
  }
}
"""
CHECK_EXECUTIONS_QUERY = """
query ($key: AssetKeyInput!, $name: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $name, limit: 5) { runId status }
}
"""
BACKFILL_MUTATION = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
AUTOMATION_QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        schedules { name scheduleState { status } }
        sensors { name sensorState { status } }
      }
    }
  }
}
"""


@dataclass
class Topology:
    web_port: int
    mlflow_port: int
    warehouse_url: str
    processes: list[Process] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def mlflow(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.processes)

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        if variables is None:
            return graphql(self.web_port, text)
        request = urllib.request.Request(
            f"{self.web}/graphql",
            data=json.dumps({"query": text, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert not body.get("errors"), body["errors"]
        return body["data"]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_for(what: str, ready: Any, topology: Topology, deadline: float) -> None:
    while not ready():
        dead = [p for p in topology.processes if p.popen.poll() is not None]
        if dead:
            pytest.fail(f"{what}: {[p.name for p in dead]} exited\n{topology.logs()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not ready in time\n{topology.logs()}")
        time.sleep(1)


def asset_nodes(topology: Topology) -> dict[str, dict[str, Any]]:
    nodes = topology.query(ASSETS_QUERY)["assetNodes"]
    return {"/".join(node["assetKey"]["path"]): node for node in nodes}


def step_failures(topology: Topology, run_id: str) -> list[str]:
    events = topology.query(STEP_FAILURES_QUERY, {"id": run_id})["logsForRun"].get("events", [])
    return [f"{e['stepKey']}: {e['error']['message']}" for e in events if e.get("error")]


def pipeline_done(topology: Topology) -> bool:
    """strategy_signals written after every model, and no run queued or in progress."""
    runs = topology.query(RUNS_QUERY)["runsOrError"]["results"]
    failed = [run for run in runs if run["status"] in {"FAILURE", "CANCELED"}]
    if failed:
        reasons = [step_failures(topology, run["runId"]) for run in failed]
        pytest.fail(f"runs failed: {failed}\n{reasons}\n{topology.logs()}")
    if not runs or any(run["status"] not in TERMINAL for run in runs):
        return False
    nodes = asset_nodes(topology)

    def newest(key: str) -> float:
        materializations = nodes[key]["assetMaterializations"]
        return float(materializations[0]["timestamp"]) if materializations else 0.0

    models = [newest(key) for key in MODELS]
    if not all(models) or newest("strategy_signals") <= max(models):
        return False
    topology.runs = runs
    return True


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    tmp = tmp_path_factory.mktemp("production")
    bin_dir = Path(sys.executable).parent
    with contextlib.ExitStack() as stack:
        instance_url = stack.enter_context(temporary_database("crypto_assets_test_e2e_dagster"))
        warehouse_url = stack.enter_context(temporary_database("crypto_assets_test_e2e_warehouse"))
        mlflow_url = stack.enter_context(temporary_database("crypto_assets_test_e2e_mlflow"))
        ports = {name: free_port() for name in ("mlflow", "code", "webserver")}
        topology = Topology(ports["webserver"], ports["mlflow"], sqlalchemy_url(warehouse_url))

        home = tmp / "dagster_home"
        home.mkdir()
        shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
        workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
        workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=ports["code"])
        (tmp / "workspace.yaml").write_text(yaml.safe_dump(workspace))

        today = dt.datetime.now(dt.UTC).date()
        base = {k: v for k, v in os.environ.items() if k not in CONTRACT_ENV and not k.startswith("DAGSTER_")}
        base["DO_NOT_TRACK"] = "1"
        dagster_env = {
            **base,
            "DAGSTER_HOME": str(home),
            **dagster_pg_env(instance_url),
            "CRYPTO_ASSETS_HOME": str(tmp / "crypto_assets_home"),
            "CRYPTO_ASSETS_WAREHOUSE_URL": topology.warehouse_url,
            "CRYPTO_ASSETS_SOURCE": "synthetic",
            "CRYPTO_ASSETS_SYMBOLS": SYMBOLS,
            "CRYPTO_ASSETS_TIMEFRAME": "15m",
            "CRYPTO_ASSETS_START": (today - dt.timedelta(days=HISTORY_DAYS)).isoformat(),
            "CRYPTO_ASSETS_RETRAIN_LABEL_GROWTH": "",
            "SLACK_WEBHOOK_URL": "",
            "CRYPTO_ASSETS_ALERT_WEBHOOK": "",
            "MLFLOW_TRACKING_URI": topology.mlflow,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        # empty means "the documented default", as in compose; unset them rather than pass ""
        dagster_env = {k: v for k, v in dagster_env.items() if v or k not in CONTRACT_ENV}
        mlflow_env = {**base, "MLFLOW_SERVER_ALLOWED_HOSTS": "localhost,localhost:*,127.0.0.1,127.0.0.1:*"}
        local = {
            "mlflow": {
                "--host": "127.0.0.1",
                "--port": str(ports["mlflow"]),
                "--backend-store-uri": mlflow_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                "--artifacts-destination": str(tmp / "mlflow_artifacts"),
            },
            "code": {"-h": "127.0.0.1", "-p": str(ports["code"])},
            "webserver": {"-h": "127.0.0.1", "-p": str(ports["webserver"]), "-w": "workspace.yaml"},
            "daemon": {"-w": "workspace.yaml"},
        }
        envs = {"mlflow": mlflow_env}
        stack.callback(lambda: stop(list(reversed(topology.processes))))

        started = time.monotonic()
        deadline = started + STARTUP_SECONDS

        def launch(name: str) -> None:
            args = BY_NAME[name].local_command(bin_dir, local[name])
            topology.processes.append(start(name, args, envs.get(name, dagster_env), tmp))

        launch("mlflow")
        launch("code")
        wait_for("mlflow", lambda: http_ok(f"{topology.mlflow}/health"), topology, deadline)
        wait_for("code server", lambda: grpc_serving(ports["code"]), topology, deadline)
        launch("webserver")
        launch("daemon")

        def dagster_ready() -> bool:
            if server_info(topology.web_port) is None:
                return False
            data = topology.query(STATUS_QUERY)
            state, _ = location_state(data)
            if state.startswith("ERROR"):
                pytest.fail(state)
            return state == "LOADED" and not unhealthy_daemons(data)

        wait_for("webserver and daemon", dagster_ready, topology, deadline)
        topology.timings["startup"] = time.monotonic() - started

        days = [(today - dt.timedelta(days=n)).isoformat() for n in range(HISTORY_DAYS, -1, -1)]
        launched = topology.query(
            BACKFILL_MUTATION,
            {"params": {"partitionNames": days, "assetSelection": [{"path": ["raw_ohlc"]}]}},
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        pipeline_started = time.monotonic()
        wait_for(
            "candles to signals",
            lambda: pipeline_done(topology),
            topology,
            pipeline_started + PIPELINE_SECONDS,
        )
        topology.timings["pipeline"] = time.monotonic() - pipeline_started
        yield topology
        print(f"timings: {topology.timings}")


def test_runs_succeeded_through_the_daemon(topology: Topology) -> None:
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=topology.web_port)
    assert topology.runs
    for run in topology.runs:
        assert client.get_run_status(run["runId"]).value == "SUCCESS", run
    jobs = {run["jobName"] for run in topology.runs}
    assert len(jobs) > 1, jobs  # the backfill's run and the automation's runs


def test_every_asset_materialized_with_check_results(topology: Topology) -> None:
    nodes = asset_nodes(topology)
    assert {"raw_ohlc", "features", "strategy_signals", *MODELS} <= set(nodes)
    missing = [key for key, node in nodes.items() if not node["assetMaterializations"]]
    assert not missing, missing
    for key, node in nodes.items():
        checks = node["assetChecksOrError"].get("checks", [])
        executed = [c for c in checks if c["executionForLatestMaterialization"]]
        assert not checks or executed, f"{key}: no check ran"
        errors = [
            c["name"]
            for c in executed
            if c["executionForLatestMaterialization"]["status"] == "EXECUTION_FAILED"
        ]
        assert not errors, f"{key}: checks errored {errors}"
    first = nodes["raw_ohlc"]["assetChecksOrError"]["checks"][0]["name"]
    executions = topology.query(CHECK_EXECUTIONS_QUERY, {"key": {"path": ["raw_ohlc"]}, "name": first})[
        "assetCheckExecutions"
    ]
    assert executions and executions[0]["status"] == "SUCCEEDED", executions


def test_models_registered_with_a_champion_in_the_mlflow_server(topology: Topology) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=topology.mlflow, registry_uri=topology.mlflow)
    names = {model.name for model in client.search_registered_models()}
    assert {f"crypto_assets.{s}" for s in STRATEGIES} <= names, names
    champions = {}
    for strategy in STRATEGIES:
        with contextlib.suppress(Exception):
            champions[strategy] = client.get_model_version_by_alias(f"crypto_assets.{strategy}", "champion")
    assert champions, "no strategy has a champion"
    for version in champions.values():
        run = client.get_run(version.run_id)
        assert run.info.status == "FINISHED"
        assert client.list_artifacts(version.run_id) or version.source  # proxied artifacts stored


def test_strategy_signals_has_rows_in_the_warehouse(topology: Topology) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(topology.warehouse_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT count(*) FROM strategy_signals")).scalar_one()
            symbols = connection.execute(sa.text("SELECT count(DISTINCT symbol) FROM raw_ohlc")).scalar_one()
    finally:
        engine.dispose()
    assert rows > 0
    assert symbols == len(SYMBOLS.split(","))


def test_schedule_and_sensors_are_running(topology: Topology) -> None:
    (repo,) = topology.query(AUTOMATION_QUERY)["repositoriesOrError"]["nodes"]
    statuses = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
    statuses |= {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert statuses["raw_ohlc_after_each_bar"] == "RUNNING"
    assert {name for name, status in statuses.items() if status != "RUNNING"} == set(), statuses


# --- what a person sees, in Chromium -----------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
ERROR_TEXTS = ("Unexpected error", "Page not found", "Something went wrong", "PythonError")


@pytest.fixture(scope="module")
def browser_page(topology: Topology) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: apt-get install -y chromium")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(30_000)
            page.console_errors = []  # type: ignore[attr-defined]
            page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
            page.on("pageerror", lambda e: page.console_errors.append(str(e)))
            yield page
        finally:
            browser.close()


def visit(page: Any, url: str, shot: str, texts: list[str]) -> None:
    page.console_errors.clear()
    page.goto(url, wait_until="networkidle")
    try:
        for text in texts:
            page.get_by_text(text, exact=True).first.wait_for(state="visible")
    finally:
        page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    body = page.inner_text("body")
    shown = [text for text in ERROR_TEXTS if text in body]
    assert not shown, f"{url} shows {shown}"
    assert not page.console_errors, f"{url}: console errors {page.console_errors}"


def test_ui_asset_graph_shows_assets_and_groups(topology: Topology, browser_page: Any) -> None:
    nodes = asset_nodes(topology)
    groups = sorted({node["groupName"] for node in nodes.values()})
    visit(browser_page, f"{topology.web}/asset-groups", "asset_graph", groups)
    visit(browser_page, f"{topology.web}/assets", "asset_catalog", sorted(nodes))


def test_ui_run_page_opens(topology: Topology, browser_page: Any) -> None:
    run = topology.runs[0]
    visit(browser_page, f"{topology.web}/runs/{run['runId']}", "run", ["Success"])


def test_ui_checks_tab_lists_checks_with_results(topology: Topology, browser_page: Any) -> None:
    checks = asset_nodes(topology)["raw_ohlc"]["assetChecksOrError"]["checks"]
    visit(
        browser_page,
        f"{topology.web}/assets/raw_ohlc?view=checks",
        "raw_ohlc_checks",
        [c["name"] for c in checks],
    )
    assert browser_page.get_by_text("Passed").count() > 0


def test_ui_schedule_and_sensors_running(topology: Topology, browser_page: Any) -> None:
    (repo,) = topology.query(AUTOMATION_QUERY)["repositoriesOrError"]["nodes"]
    names = [s["name"] for s in repo["schedules"]] + [s["name"] for s in repo["sensors"]]
    visit(browser_page, f"{topology.web}/automation", "automation", names)
    switches = browser_page.locator("input[type=checkbox]:checked")
    assert switches.count() >= len(names)


def test_ui_mlflow_lists_models_with_champion(topology: Topology, browser_page: Any) -> None:
    names = [f"crypto_assets.{s}" for s in STRATEGIES]
    visit(browser_page, f"{topology.mlflow}/#/models", "mlflow_models", names)
    assert browser_page.get_by_text("champion").count() > 0
