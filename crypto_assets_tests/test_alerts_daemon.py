"""End to end: the real `dagster-daemon run` on a temporary instance delivers each alert once.

The daemon evaluates freshness (every 5 s here instead of 30) and runs the alerts sensor (every
30 s, its production interval). The test records one successful and one failed run in the same
instance, waits for the failure alert, restarts the daemon (the sensor's cursor must survive),
waits for the asset to go stale one minute after its materialization, materializes it again and
waits for the recovery; each message must arrive exactly once.
"""

import contextlib
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
from crypto_assets_tests.alert_receiver import Receiver, alert_receiver

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
SENSOR_INTERVAL = 30


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
        time.sleep(1)
    log = (home / "daemon.log").read_text(errors="replace").splitlines()[-30:]
    pytest.fail(f"{what} not within {timeout:.0f} s; daemon log:\n" + "\n".join(log))


def sensor_cursor(instance: DagsterInstance) -> str | None:
    for state in instance.all_instigator_state():
        if state.name == "alerts" and state.instigator_data is not None:
            return getattr(state.instigator_data, "cursor", None)
    return None


def heartbeat(instance: DagsterInstance, fail_with: str = "") -> bool:
    return materialize(
        [alerting_location.heartbeat],
        instance=instance,
        run_config={"ops": {"heartbeat": {"config": {"fail_with": fail_with}}}},
        raise_on_error=False,
    ).success


def kinds(receiver: Receiver) -> list[str]:
    return [body["kind"] for body in receiver.bodies]


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
            with daemon(home, env):
                wait_for("the sensor's first tick", lambda: sensor_cursor(instance) is not None, home, 90)
                assert heartbeat(instance)
                assert not heartbeat(instance, fail_with="exchange answered 502")
                wait_for(
                    "the run failure alert",
                    lambda: "run_failed" in kinds(receiver),
                    home,
                    2 * SENSOR_INTERVAL + 15,
                )
            with daemon(home, env):  # restarted: the cursor comes back from the instance
                wait_for(
                    "the stale alert",
                    lambda: "asset_stale" in kinds(receiver),
                    home,
                    120 + 2 * SENSOR_INTERVAL,
                )
                assert heartbeat(instance)
                wait_for(
                    "the recovery",
                    lambda: "asset_recovered" in kinds(receiver),
                    home,
                    2 * SENSOR_INTERVAL + 20,
                )
                delivered = list(receiver.bodies)  # a minute later the heartbeat is stale again

    # several ticks and a restart passed between the failure and the recovery: no message twice

    assert [body["kind"] for body in delivered] == ["run_failed", "asset_stale", "asset_recovered"]
    failed, stale, recovered = delivered
    assert failed["subject"] == "heartbeat" and "RuntimeError: exchange answered 502" in failed["text"]
    assert (
        stale["text"].startswith("heartbeat is stale: last materialized ")
        and "allowed 1 min" in stale["text"]
    )
    assert recovered["text"].startswith("heartbeat is fresh again")
