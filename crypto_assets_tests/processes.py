"""Start and stop the production topology's processes on loopback, and ask them how they are:
helpers of the tests that run the compose services without Docker (test_production_topology,
test_production_e2e through e2e_topology, test_dev)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCATION = "crypto_assets"

DEADLINE_SECONDS = 120
STATUS_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name assetNodes { assetKey { path } } } }
          ... on PythonError { message causes { message } }
        }
      }
    }
  }
  instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } }
}
"""


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} (exit {self.popen.poll()}) ---\n" + "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(name: str, args: list[str], env: dict[str, str], cwd: Path) -> Process:
    log = cwd / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, popen, log)


def stop(processes: list[Process], timeout: float = 20.0) -> list[str]:
    """SIGTERM each process group, then SIGKILL what is left; name the groups that needed it."""
    for proc in processes:
        _signal_group(proc.popen.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    stubborn = []
    for proc in processes:
        while _group_alive(proc.popen.pid) and time.monotonic() < deadline:
            proc.popen.poll()
            time.sleep(0.2)
        if _group_alive(proc.popen.pid):
            stubborn.append(proc.name)
            _signal_group(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(timeout=10)
    return stubborn


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """True while a process of the group is alive (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            return True
    return False


def local_command(cmd: list[str], values: Mapping[str, str], bin_dir: Path) -> list[str]:
    """A compose command run here: this venv's executable; the values of the options it has."""
    local = [str(bin_dir / cmd[0])]
    for previous, part in zip(cmd, cmd[1:], strict=False):
        local.append(values.get(previous, part))
    return local


def grpc_serving(port: int) -> bool:
    """The code service's compose healthcheck (`dagster api grpc-health-check`), in process."""
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints each refused connection
        return client.health_check_query() == "SERVING"


def graphql(port: int, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    assert not body.get("errors"), body["errors"]
    return body["data"]


def server_info(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as resp:
            return json.load(resp)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def location_state(data: dict[str, Any]) -> tuple[str, set[str]]:
    """('LOADED'|'LOADING'|'MISSING'|'ERROR: ...', asset keys) of the crypto_assets location."""
    entries = {e["name"]: e for e in data["workspaceOrError"].get("locationEntries", [])}
    entry = entries.get(LOCATION)
    if entry is None:
        return "MISSING", set()
    location = entry["locationOrLoadError"] or {}
    if location.get("__typename") == "PythonError":
        causes = "".join(f"caused by: {cause['message']}" for cause in location["causes"])
        return f"ERROR: {location['message']}{causes}", set()
    keys = {
        "/".join(node["assetKey"]["path"])
        for repo in location.get("repositories", [])
        for node in repo["assetNodes"]
    }
    return entry["loadStatus"], keys


def unhealthy_daemons(data: dict[str, Any]) -> list[str]:
    statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]
    return [s["daemonType"] for s in statuses if s["required"] and not s["healthy"]]
