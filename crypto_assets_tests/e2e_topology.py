"""The production topology of test_production_e2e: its processes started on loopback from
crypto_assets_tests/topology.py, its data, the launches of the history, what "done" means, and the
readers of the answers."""

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
from contextlib import contextmanager
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
from crypto_assets_tests.topology import BY_NAME, CONTRACT_ENV, DEPLOY, SERVICES

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


@contextmanager
def production_topology(tmp: Path) -> Iterator[Topology]:
    """The processes started, the history loaded and the chain done (see test_production_e2e);
    the processes stopped and the databases dropped on the way out, also after a failure."""
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
        # every variable compose gives the Dagster services (topology.py), each set here
        contract = {
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
        mlflow_contract = {"MLFLOW_SERVER_ALLOWED_HOSTS": "localhost,localhost:*,127.0.0.1,127.0.0.1:*"}
        for service in SERVICES:
            given = mlflow_contract if service is BY_NAME["mlflow"] else contract
            assert set(given) == set(service.environment), f"{service.name}: not the compose environment"
        # empty means "the documented default", as in compose; unset them rather than pass ""
        dagster_env = {**base, **{k: v for k, v in contract.items() if v or k not in CONTRACT_ENV}}
        mlflow_env = {**base, **mlflow_contract}
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
        stack.callback(lambda: _stop_reporting_stubborn(list(reversed(topology.processes))))

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


def _stop_reporting_stubborn(processes: list) -> None:
    """Stop the topology; a service that ignored SIGTERM for 20 s is named (it was SIGKILLed)."""
    stubborn = stop(processes)
    if stubborn:
        print(f"e2e: SIGKILLed after ignoring SIGTERM for 20 s: {', '.join(stubborn)}", file=sys.stderr)
