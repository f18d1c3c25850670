"""The production topology end to end (slow, PostgreSQL), then in a browser.

Processes (crypto_assets_tests/topology.py, started like docker-compose.yml starts them, on
loopback): the MLflow server on PostgreSQL with proxied artifacts, the code location as a gRPC
code server, the webserver and the daemon on deploy/dagster.yaml (instance on PostgreSQL); the
warehouse is a PostgreSQL database too. Each has its own fresh database, dropped afterwards.

Data: the synthetic market's six default symbols over TRAINED_WINDOW (90 days of 15m bars, fixed
dates), the window test_cli trains on the embedded stores, exported to a CSV folder that is the
source (`CRYPTO_ASSETS_SOURCE=csv:<folder>`): the same bars whatever day the test runs, so the same
outcome: all three models train and register, swing gets a champion, dca and channel show no edge
and get none. A CSV export rather than the synthetic source itself, because the scheduler's own
ticks (every 15 minutes, one may fall inside the test) load today's partition: from the synthetic
market that would add today's bars, from the export it adds nothing (the run succeeds; its
coverage check fails, as it should for a feed that stopped).

What launches the runs, all through the webserver's GraphQL and the daemon:
- the history, every day of the window but the last, as one backfill (launchPartitionBackfill,
  what the UI's Materialize of a partition range does): one run, single-run backfill policy;
- the window's last day by the schedule: the real `raw_ohlc_after_each_bar`, evaluated by the code
  server at its last tick of that day (scheduleDryRun) and its run request launched
  (launchMultipleRuns) - the UI's "Test schedule" and "Launch all". A one-partition run of the
  schedule's job `refresh_raw_ohlc`, with raw_ohlc's checks;
- everything downstream by the automation sensors alone: dbt models, features, labels, the models
  (first training by `retrain_on_label_growth`), strategy_signals.

Why the schedule's run and not the backfill alone: a single-run backfill over many partitions
leaves one PLANNED execution per partition of each raw_ohlc check beside the one that ran (Dagster
1.13.27 records a range's check result without a partition), so the blocking-check condition of
the derived assets never sees those checks pass; a one-partition run does. Why not wait for the
scheduler's own tick: it fires after each 15m bar, up to 15 minutes away, and a base timeframe
that fires every minute has no usable labels (1m bars: 7 dca labels on six symbols x 7 days, swing
hits its take profit on 0.4 % of its entries). The scheduler daemon itself is checked healthy
and the schedule running.

Checked through GraphQL, the MLflow client and SQL, then in Chromium (screenshots in
.artifacts/ui/). Each phase's wall time is printed with a failing test's output.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from crypto_assets_tests import e2e_graphql as gql
from crypto_assets_tests.helpers import SIX, TRAINED_WINDOW
from crypto_assets_tests.pg import dagster_pg_env, sqlalchemy_url, temporary_database
from crypto_assets_tests.processes import (
    STATUS_QUERY,
    Process,
    free_port,
    grpc_serving,
    location_state,
    server_info,
    start,
    stop,
    unhealthy_daemons,
)
from crypto_assets_tests.topology import BY_NAME, CONTRACT_ENV, DEPLOY

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / ".artifacts" / "ui"
STARTUP_SECONDS = 240
LOAD_SECONDS = 300  # the backfill's run and the schedule's run; under a minute here
CHAIN_SECONDS = 600  # from there to strategy_signals; about 2.5 minutes here
FIRST, LAST = (dt.date.fromisoformat(day) for day in TRAINED_WINDOW)
HISTORY = [(FIRST + dt.timedelta(days=n)).isoformat() for n in range((LAST - FIRST).days)]
SCHEDULE = "raw_ohlc_after_each_bar"
# the schedule's last tick of the window's last day (one minute after its 23:30 bar closes)
LAST_TICK = dt.datetime.combine(LAST, dt.time(23, 46), dt.UTC)
STRATEGIES = ("dca", "swing", "channel")
MODELS = tuple(f"{s}_model" for s in STRATEGIES)
CHAMPIONS = {"swing"}  # what TRAINED_WINDOW decides (test_cli finds the same)
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass
class Topology:
    web_port: int
    mlflow_port: int
    warehouse_url: str
    processes: list[Process] = field(default_factory=list)
    # runs and asset nodes when the chain was done: the scheduler's own tick may start more later
    runs: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def mlflow(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return gql.post(self.web_port, text, variables)

    def report(self) -> str:
        """Timings, runs, the sensors' last ticks and the processes' logs: what a failure needs."""
        lines = [f"timings (s): {self.timings_text()}"]
        with contextlib.suppress(Exception):
            runs = self.query(gql.RUNS)["runsOrError"]["results"]
            lines += [f"run {r['runId'][:8]} {r['jobName']} {r['status']}" for r in reversed(runs)]
            (repo,) = self.query(gql.AUTOMATION)["repositoriesOrError"]["nodes"]
            for sensor in repo["sensors"]:
                ticks = sensor["sensorState"]["ticks"]
                lines.append(f"sensor {sensor['name']}: {ticks[0] if ticks else 'no tick'}")
        lines += [p.tail() for p in self.processes]
        return "\n".join(lines)

    def timings_text(self) -> str:
        return ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.timings.items())


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_for(what: str, ready: Callable[[], bool], topology: Topology, seconds: float) -> float:
    """Poll `ready` until it holds; fail when a process exits or time runs out. Seconds taken."""
    started = time.monotonic()
    while not ready():
        dead = [p.name for p in topology.processes if p.popen.poll() is not None]
        if dead:
            pytest.fail(f"{what}: {dead} exited\n{topology.report()}")
        if time.monotonic() - started > seconds:
            pytest.fail(f"{what}: not done in {seconds:.0f} s\n{topology.report()}")
        time.sleep(2)
    return time.monotonic() - started


def asset_nodes(topology: Topology) -> dict[str, dict[str, Any]]:
    return {gql.key_of(node): node for node in topology.query(gql.ASSETS)["assetNodes"]}


def step_failures(topology: Topology, run_id: str) -> list[str]:
    events = topology.query(gql.STEP_FAILURES, {"id": run_id})["logsForRun"].get("events", [])
    return [f"{e['stepKey']}: {e['error']['message']}" for e in events if e.get("error")]


def runs_so_far(topology: Topology) -> list[dict[str, Any]]:
    """Every run, newest first; fails the test at once when one failed, with its step errors."""
    runs = topology.query(gql.RUNS)["runsOrError"]["results"]
    failed = [run for run in runs if run["status"] in {"FAILURE", "CANCELED"}]
    if failed:
        reasons = {run["runId"]: step_failures(topology, run["runId"]) for run in failed}
        pytest.fail(f"runs failed: {reasons}\n{topology.report()}")
    return runs


def history_loaded(topology: Topology) -> bool:
    """The backfill's run and the schedule's run of the last day both succeeded."""
    loads = [
        run
        for run in runs_so_far(topology)
        if "dagster/backfill" in gql.tags_of(run)
        or gql.tags_of(run).get("dagster/partition") == LAST.isoformat()
    ]
    return len(loads) == 2 and all(run["status"] == "SUCCESS" for run in loads)


def chain_done(topology: Topology) -> bool:
    """strategy_signals written after every model, and no run queued or in progress."""
    runs = runs_so_far(topology)
    if any(run["status"] not in TERMINAL for run in runs):
        return False
    nodes = asset_nodes(topology)
    trained = [gql.newest_materialization(nodes[key]) for key in MODELS]
    if not all(trained) or gql.newest_materialization(nodes["strategy_signals"]) <= max(trained):
        return False
    topology.runs, topology.nodes = runs, nodes
    return True


def write_market(folder: Path) -> None:
    """The synthetic market's bars of TRAINED_WINDOW, one CSV file per symbol (`BTC-USD.csv`)."""
    import pandas as pd

    from crypto_assets.ingestion.sources.synthetic import SyntheticSource
    from crypto_assets.market import Timeframe

    folder.mkdir()
    start, end = pd.Timestamp(FIRST, tz="UTC"), pd.Timestamp(LAST + dt.timedelta(days=1), tz="UTC")
    for symbol in SIX.split(","):
        bars = SyntheticSource().bars(symbol, Timeframe.parse("15m"), start, end)
        bars.rename(columns={"ts": "timestamp"}).to_csv(folder / f"{symbol}.csv", index=False)


def scheduled_run(topology: Topology) -> dict[str, Any]:
    """The schedule's run of the window's last day (not one of the scheduler's own ticks)."""
    (run,) = [
        r
        for r in topology.runs
        if r["jobName"] == "refresh_raw_ohlc" and gql.tags_of(r).get("dagster/partition") == LAST.isoformat()
    ]
    return run


def launch_history(topology: Topology) -> None:
    """The backfill of the history and the schedule's run of the last day (see the docstring)."""
    launched = topology.query(
        gql.BACKFILL,
        {"params": {"partitionNames": HISTORY, "assetSelection": [{"path": ["raw_ohlc"]}]}},
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    selector = {"repositoryLocationName": gql.LOCATION, "repositoryName": gql.REPOSITORY}
    tick = topology.query(
        gql.SCHEDULE_DRY_RUN,
        {"selector": {**selector, "scheduleName": SCHEDULE}, "timestamp": LAST_TICK.timestamp()},
    )["scheduleDryRun"]
    assert tick["__typename"] == "DryRunInstigationTick", tick
    evaluation = tick["evaluationResult"]
    assert not evaluation["error"], evaluation["error"]
    requests = evaluation["runRequests"]
    partitions = [gql.tags_of(r).get("dagster/partition") for r in requests]
    assert partitions == [LAST.isoformat()], requests
    params = [
        {
            "selector": {**selector, "jobName": request["jobName"] or "refresh_raw_ohlc"},
            "runConfigData": request["runConfigYaml"],
            "mode": "default",
            "executionMetadata": {"tags": request["tags"]},
        }
        for request in requests
    ]
    result = topology.query(gql.LAUNCH_RUNS, {"params": params})["launchMultipleRuns"]
    launches = result.get("launchMultipleRunsResult") or [result]
    assert [r["__typename"] for r in launches] == ["LaunchRunSuccess"], result


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    tmp = tmp_path_factory.mktemp("production")
    bin_dir = Path(sys.executable).parent
    with contextlib.ExitStack() as stack:
        started = time.monotonic()
        instance_url = stack.enter_context(temporary_database("crypto_assets_test_e2e_dagster"))
        warehouse_url = stack.enter_context(temporary_database("crypto_assets_test_e2e_warehouse"))
        mlflow_url = stack.enter_context(temporary_database("crypto_assets_test_e2e_mlflow"))
        write_market(tmp / "market")
        ports = {name: free_port() for name in ("mlflow", "code", "webserver")}
        topology = Topology(ports["webserver"], ports["mlflow"], sqlalchemy_url(warehouse_url))

        home = tmp / "dagster_home"
        home.mkdir()
        shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
        workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
        workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=ports["code"])
        (tmp / "workspace.yaml").write_text(yaml.safe_dump(workspace))

        base = {k: v for k, v in os.environ.items() if k not in CONTRACT_ENV and not k.startswith("DAGSTER_")}
        base["DO_NOT_TRACK"] = "1"
        dagster_env = {
            **base,
            "DAGSTER_HOME": str(home),
            **dagster_pg_env(instance_url),
            "CRYPTO_ASSETS_HOME": str(tmp / "crypto_assets_home"),
            "CRYPTO_ASSETS_WAREHOUSE_URL": topology.warehouse_url,
            "CRYPTO_ASSETS_SOURCE": f"csv:{tmp / 'market'}",
            "CRYPTO_ASSETS_SYMBOLS": "",  # the default six
            "CRYPTO_ASSETS_TIMEFRAME": "15m",
            "CRYPTO_ASSETS_START": FIRST.isoformat(),
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

        def launch(name: str) -> None:
            args = BY_NAME[name].local_command(bin_dir, local[name])
            topology.processes.append(start(name, args, envs.get(name, dagster_env), tmp))

        launch("mlflow")
        launch("code")
        wait_for("mlflow", lambda: http_ok(f"{topology.mlflow}/health"), topology, STARTUP_SECONDS)
        wait_for("code server", lambda: grpc_serving(ports["code"]), topology, STARTUP_SECONDS)
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

        wait_for("webserver and daemon", dagster_ready, topology, STARTUP_SECONDS)
        topology.timings["startup"] = time.monotonic() - started

        launch_history(topology)
        topology.timings["backfill"] = wait_for(
            "the history and the last day loaded", lambda: history_loaded(topology), topology, LOAD_SECONDS
        )
        topology.timings["chain"] = wait_for(
            "candles to signals", lambda: chain_done(topology), topology, CHAIN_SECONDS
        )
        yield topology
        topology.timings["total"] = time.monotonic() - started
        print(f"timings (s): {topology.timings_text()}")  # with the output of the module's last test


@pytest.fixture(autouse=True)
def timed(request: pytest.FixtureRequest, topology: Topology) -> Iterator[None]:
    """Each test's wall time into the timings; all of them printed after it (shown on failure)."""
    started = time.monotonic()
    yield
    topology.timings[request.node.name.removeprefix("test_")] = time.monotonic() - started
    print(f"timings (s): {topology.timings_text()}")


# --- through the public APIs -------------------------------------------------------------------


def test_runs_succeeded_through_the_daemon(topology: Topology) -> None:
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=topology.web_port)
    for run in topology.runs:
        assert client.get_run_status(run["runId"]).value == "SUCCESS", run
    by_job: dict[str, list[dict[str, str]]] = {}
    for run in topology.runs:
        by_job.setdefault(run["jobName"], []).append(gql.tags_of(run))
    # the backfill (one run over the history), the schedule's run, the sensors' runs
    backfills = [tags for tags in by_job.get("__ASSET_JOB", []) if "dagster/backfill" in tags]
    assert [t["dagster/asset_partition_range_start"] for t in backfills] == [HISTORY[0]], by_job
    assert scheduled_run(topology)["status"] == "SUCCESS"
    sensors = {tags.get("dagster/sensor_name") for runs in by_job.values() for tags in runs}
    assert {
        "transform_automation",
        "features_and_labels_automation",
        "retrain_on_label_growth",
        "signals_automation",
    } <= sensors, sensors


def test_every_asset_materialized_with_check_results(topology: Topology) -> None:
    nodes = topology.nodes
    assert {"raw_ohlc", "features", "strategy_signals", *MODELS} <= set(nodes)
    missing = [key for key, node in nodes.items() if not node["assetMaterializations"]]
    assert not missing, missing
    for key, node in nodes.items():
        checks = node["assetChecksOrError"].get("checks", [])
        executed = [c for c in checks if c["executionForLatestMaterialization"]]
        assert not checks or executed, f"{key}: no check ran"
        statuses = {c["name"]: c["executionForLatestMaterialization"]["status"] for c in executed}
        errors = [name for name, status in statuses.items() if status == "EXECUTION_FAILED"]
        assert not errors, f"{key}: checks errored {errors}"
    # raw_ohlc's blocking check passed on the schedule's partition: what released the chain
    scheduled = scheduled_run(topology)["runId"]
    executions = topology.query(
        gql.CHECK_EXECUTIONS,
        {"key": {"path": ["raw_ohlc"]}, "name": "raw_ohlc_expectations", "partition": LAST.isoformat()},
    )["assetCheckExecutions"]
    assert [(e["runId"], e["status"]) for e in executions] == [(scheduled, "SUCCEEDED")], executions


def test_models_registered_and_the_champions_the_data_decides(topology: Topology) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=topology.mlflow, registry_uri=topology.mlflow)
    champions = {}
    for strategy in STRATEGIES:
        name = f"crypto_assets.{strategy}"
        versions = client.search_model_versions(f"name = '{name}'")
        assert versions, f"{name} has no registered version"
        for version in versions:
            run = client.get_run(version.run_id)
            assert run.info.status == "FINISHED", (name, version.version)
            # proxied artifacts: stored behind the server, listed through it
            assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
            assert "plots" in {a.path for a in client.list_artifacts(version.run_id)}, (name, version.version)
        with contextlib.suppress(MlflowException):
            champions[strategy] = client.get_model_version_by_alias(name, "champion")
    assert set(champions) == CHAMPIONS


def test_strategy_signals_has_rows_in_the_warehouse(topology: Topology) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(topology.warehouse_url)
    try:
        with engine.connect() as connection:
            signals = connection.execute(
                sa.text("SELECT strategy, count(DISTINCT symbol) FROM strategy_signals GROUP BY strategy")
            ).all()
            days = connection.execute(
                sa.text("SELECT count(DISTINCT symbol), min(ts), max(ts) FROM raw_ohlc")
            ).one()
    finally:
        engine.dispose()
    assert dict(signals) == {strategy: len(SIX.split(",")) for strategy in CHAMPIONS}
    assert days[0] == len(SIX.split(","))
    assert (days[1].astimezone(dt.UTC).date(), days[2].astimezone(dt.UTC).date()) == (FIRST, LAST)


def test_schedule_and_sensors_are_running(topology: Topology) -> None:
    (repo,) = topology.query(gql.AUTOMATION)["repositoriesOrError"]["nodes"]
    statuses = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
    statuses |= {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    assert statuses[SCHEDULE] == "RUNNING"
    assert {name for name, status in statuses.items() if status != "RUNNING"} == set(), statuses
    daemons = topology.query(STATUS_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
    healthy = {d["daemonType"] for d in daemons if d["healthy"]}
    assert {"SCHEDULER", "SENSOR", "ASSET", "BACKFILL", "QUEUED_RUN_COORDINATOR"} <= healthy, daemons


# --- what a person sees, in Chromium -----------------------------------------------------------


@pytest.fixture(scope="module")
def browser(topology: Topology) -> Iterator[Any]:
    from crypto_assets_tests.browser import CHROMIUM, chromium_page

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with chromium_page() as page:
        yield page
        topology.timings["browser"] = time.monotonic() - started
        if page.ignored:
            print("not counted as errors (see crypto_assets_tests/browser.py):", *page.ignored, sep="\n  ")


def visit(page: Any, url: str, shot: str, texts: list[str], **options: Any) -> str:
    from crypto_assets_tests.browser import visit as open_and_check

    return open_and_check(page, url, ARTIFACTS / f"{shot}.png", texts, **options)


def shown_as(label: str, key: str) -> bool:
    """Whether a graph node's label shows `key`: whole, or shortened in the middle
    (`strategy_c…_labels`)."""
    head, dots, tail = label.partition("…")
    return label == key or bool(dots) and key.startswith(head) and key.endswith(tail)


ASSET_NODES = "svg foreignObject:not(.group)"  # the graph's nodes; the groups' boxes have .group
# the whole drawing (the <svg>) inside the graph's panel (the nearest element around it that clips)
IN_VIEW = """nodes => {
  const svg = nodes[0].ownerSVGElement;
  let panel = svg.parentElement;
  while (getComputedStyle(panel).overflow !== "hidden") panel = panel.parentElement;
  const r = svg.getBoundingClientRect(), v = panel.getBoundingClientRect();
  return r.left >= v.left && r.top >= v.top && r.right <= v.right && r.bottom <= v.bottom;
}"""


def expand_all_groups(page: Any) -> None:
    """The graph's "Expand all groups" (its menu names the shortcut), then zoomed out until every
    node is in view, for the screenshot."""
    page.keyboard.press("Alt+e")
    page.get_by_text("raw_ohlc", exact=True).first.wait_for(state="visible")
    zoom_out = page.locator("button:has([aria-label=zoom_out])")
    for _ in range(6):  # further out, the graph draws its nodes without labels
        if page.eval_on_selector_all(ASSET_NODES, IN_VIEW):
            return
        zoom_out.click()
        page.wait_for_timeout(400)  # the zoom animates


def test_ui_asset_graph_shows_assets_and_groups(topology: Topology, browser: Any) -> None:
    nodes = topology.nodes
    groups = sorted({node["groupName"] for node in nodes.values()})
    visit(browser, f"{topology.web}/asset-groups", "asset_graph", groups, then=expand_all_groups)
    # one node per asset, each labelled with its key (long keys shortened in the middle)
    labels = browser.page.eval_on_selector_all(
        ASSET_NODES, "nodes => nodes.map(n => n.textContent.trim()).filter(t => t)"
    )
    assert len(labels) == len(nodes), labels
    unshown = [key for key in nodes if not any(shown_as(label, key) for label in labels)]
    assert not unshown, (unshown, labels)
    visit(browser, f"{topology.web}/assets", "asset_catalog", sorted(nodes))


def test_ui_run_page_opens(topology: Topology, browser: Any) -> None:
    run = scheduled_run(topology)
    body = visit(browser, f"{topology.web}/runs/{run['runId']}", "run", ["Success", "raw_ohlc"])
    assert f"partition: {LAST.isoformat()}" in body


def test_ui_checks_tab_lists_checks_with_results(topology: Topology, browser: Any) -> None:
    checks = topology.nodes["raw_ohlc"]["assetChecksOrError"]["checks"]
    url = f"{topology.web}/assets/raw_ohlc?view=checks"
    visit(browser, url, "raw_ohlc_checks", [c["name"] for c in checks])
    assert browser.page.get_by_text("Passed", exact=True).count() > 0


def test_ui_schedule_and_sensors_running(topology: Topology, browser: Any) -> None:
    (repo,) = topology.query(gql.AUTOMATION)["repositoriesOrError"]["nodes"]
    names = [s["name"] for s in repo["schedules"]] + [s["name"] for s in repo["sensors"]]
    visit(browser, f"{topology.web}/automation", "automation", names)
    for name in names:
        # a row holds two checkboxes: "select" (off) and the on/off switch
        row = browser.page.get_by_text(name, exact=True).first.locator(
            "xpath=ancestor::div[count(.//input[@type='checkbox']) = 2][1]"
        )
        assert row.locator("input[type=checkbox]:checked").count() == 1, f"{name} is not switched on"


def close_dialog(page: Any) -> None:
    """MLflow 3 greets a first visit with a dialog about its new registry UI: close it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    dialog = page.get_by_role("dialog")
    try:
        dialog.wait_for(state="visible", timeout=5_000)
    except PlaywrightTimeout:
        return  # not shown (a later MLflow)
    dialog.get_by_role("button", name="Close").first.click()
    dialog.wait_for(state="hidden")


def test_ui_mlflow_lists_models_with_champion(topology: Topology, browser: Any) -> None:
    names = {s: f"crypto_assets.{s}" for s in STRATEGIES}
    # MLflow's UI keeps polling: the network is never idle
    visit(
        browser,
        f"{topology.mlflow}/#/models",
        "mlflow_models",
        list(names.values()),
        then=close_dialog,
        settle=False,
    )
    for strategy, name in names.items():
        aliases = browser.page.get_by_role("row").filter(has_text=name).inner_text()
        assert ("champion" in aliases) == (strategy in CHAMPIONS), aliases
