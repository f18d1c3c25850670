"""End to end: the real `dagster-daemon run` on a temporary instance delivers each alert once.

The daemon evaluates freshness (every 5 s here instead of 30) and runs the alerts sensor (every
5 s here instead of 30). The asset is materialized, then a run fails while the receiver is down
(503, `Retry-After: 1`): the failure alert is queued and retried. A minute later the asset goes
stale and that alert queues behind it. The daemon is restarted then, with both waiting in the
sensor's cursor, and the receiver comes back: both must arrive once, in order, from the new
daemon; then the asset is materialized again and the recovery arrives once.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from crypto_assets_tests import alerting_location
from crypto_assets_tests.alert_receiver import alert_receiver

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
SENSOR_INTERVAL = 5
STALE_AFTER = 60  # the heartbeat's fail window


@contextlib.contextmanager
def daemon(home: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    log = (home / "daemon.log").open("ab")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")],
        cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def wait_for(what: str, condition: Callable[[], bool], home: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    log = (home / "daemon.log").read_text(errors="replace").splitlines()[-30:]
    pytest.fail(f"{what} not within {timeout:.0f} s; daemon log:\n" + "\n".join(log))


def sensor_cursor(instance: DagsterInstance) -> dict | None:
    for state in instance.all_instigator_state():
        if state.name == "alerts" and state.instigator_data is not None:
            text = getattr(state.instigator_data, "cursor", None)
            return json.loads(text) if text else None
    return None


def stale_and_queued(instance: DagsterInstance) -> bool:
    cursor = sensor_cursor(instance) or {}
    queued = [item["alert"]["kind"] for item in cursor.get("queue", [])]
    return cursor.get("freshness", {}).get("heartbeat") == "stale" and queued == ["run_failed", "asset_stale"]


def heartbeat(instance: DagsterInstance, fail_with: str = "") -> bool:
    return materialize(
        [alerting_location.heartbeat],
        instance=instance,
        run_config={"ops": {"heartbeat": {"config": {"fail_with": fail_with}}}},
        raise_on_error=False,
    ).success


def kinds(bodies: list[dict]) -> list[str]:
    return [body["kind"] for body in bodies]


def test_the_daemon_delivers_each_alert_once_across_a_restart(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    (home / "workspace.yaml").write_text(
        f"load_from:\n  - python_module:\n      module_name: crypto_assets_tests.alerting_location\n"
        f"      working_directory: {REPO}\n"
    )
    with alert_receiver() as receiver:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "CRYPTO_ASSETS_ALERT_WEBHOOK": receiver.url,
            "FRESHNESS_DAEMON_INTERVAL_SECONDS": "5",
        }
        with DagsterInstance.from_config(str(home)) as instance:
            assert heartbeat(instance)  # stale a minute from now
            with daemon(home, env):
                wait_for("the sensor's first tick", lambda: sensor_cursor(instance) is not None, home, 90)
                receiver.otherwise = (503, {"Retry-After": "1"})  # down
                assert not heartbeat(instance, fail_with="exchange answered 502")
                wait_for(
                    "the stale asset, queued behind the failure being retried",
                    lambda: stale_and_queued(instance),
                    home,
                    STALE_AFTER + 6 * SENSOR_INTERVAL,
                )
            tried_before_restart = len(receiver.bodies)
            receiver.otherwise = 200
            with daemon(home, env):  # restarted: the cursor, and its queue, come back from the instance
                wait_for("the queued alerts", lambda: len(receiver.delivered()) == 2, home, 90)
                assert heartbeat(instance)
                wait_for(
                    "the recovery", lambda: len(receiver.delivered()) == 3, home, 4 * SENSOR_INTERVAL + 10
                )
                time.sleep(2 * SENSOR_INTERVAL)  # two more ticks: nothing repeats
                delivered = receiver.delivered()

    # before the restart: the failure tried (and refused) on every tick, the stale alert behind it
    before = kinds(receiver.bodies[:tried_before_restart])
    assert set(before) == {"run_failed"} and set(receiver.statuses[:tried_before_restart]) == {503}
    # after it: each taken once, in order, though several ticks and a restart passed
    assert kinds(delivered) == ["run_failed", "asset_stale", "asset_recovered"]
    failed, stale, recovered = delivered
    assert failed["subject"] == "heartbeat" and "RuntimeError: exchange answered 502" in failed["text"]
    assert (
        stale["text"].startswith("heartbeat is stale: last materialized ")
        and "allowed 1 min" in stale["text"]
    )
    assert recovered["text"].startswith("heartbeat is fresh again")
