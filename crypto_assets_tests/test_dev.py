"""`crypto-assets dev`: the Dagster UI on the embedded instance, options forwarded, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from crypto_assets.cli.commands import _option_value
from crypto_assets_tests.helpers import SCRIPT
from crypto_assets_tests.processes import _group_alive, free_port

ROOT = Path(__file__).resolve().parents[1]


def test_the_embedded_instance_opens_the_ui_on_the_graph():
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert config["nux"] == {"enabled": False}  # no "Join the Dagster community" dialog


def test_options_after_dev_are_read_for_the_printed_address():
    assert _option_value(["--port", "3001", "--host", "0.0.0.0"], "-p", "--port") == "3001"
    assert _option_value(["--log-level", "debug", "-p=4000"], "-p", "--port") == "4000"
    assert _option_value(["--log-level", "debug"], "-p", "--port") is None


def test_unknown_options_of_other_commands_are_still_errors(home: Path):
    result = subprocess.run([SCRIPT, "status", "--port", "3001"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "unrecognized arguments: --port 3001" in result.stderr


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a command it starts in the background (`make dev &`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize(
    "how",
    ["ctrl-c to the group", "sigterm to the command", "ctrl-c, started in the background"],
)
def test_dev_serves_the_ui_and_stops_within_20_seconds(home: Path, tmp_path: Path, how: str):
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [SCRIPT, "dev", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_ignore_sigint if "background" in how else None,
        )
    try:
        deadline = time.monotonic() + 120
        while not _serving(port):
            assert dev.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the UI did not answer within 120 s:\n" + log.read_text()
            time.sleep(0.5)
        assert (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").exists()

        if how == "sigterm to the command":
            dev.send_signal(signal.SIGTERM)
        else:
            os.killpg(dev.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        stopped = time.monotonic() + 20
        while _group_alive(dev.pid) and time.monotonic() < stopped:
            dev.poll()
            time.sleep(0.2)
        assert not _group_alive(dev.pid), "still running 20 s after the signal:\n" + log.read_text()[-3000:]
    finally:
        if _group_alive(dev.pid):
            os.killpg(dev.pid, signal.SIGKILL)
        dev.wait(timeout=10)
