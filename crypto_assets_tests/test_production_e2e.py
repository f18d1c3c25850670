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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crypto_assets_tests import e2e_graphql as gql
from crypto_assets_tests.e2e_topology import (
    CHAMPIONS,
    FIRST,
    HISTORY,
    LAST,
    MODELS,
    SCHEDULE,
    STRATEGIES,
    Topology,
    production_topology,
    scheduled_run,
)
from crypto_assets_tests.helpers import SIX
from crypto_assets_tests.processes import STATUS_QUERY

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts" / "ui"


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with production_topology(tmp_path_factory.mktemp("production")) as topology:
        yield topology
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
        {"key": {"path": ["raw_ohlc"]}, "name": "expectation_suite", "partition": LAST.isoformat()},
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
    """The graph's "Expand all groups" (its menu names the shortcut), then zoomed out until the
    drawing fits its panel, for the screenshot."""
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
