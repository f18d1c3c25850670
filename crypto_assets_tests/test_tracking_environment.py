"""A server's MLflow credentials are in os.environ only while the MlflowResource calls MLflow, and
the MLFLOW_* variables MLflow sets for itself are gone again afterwards: a step or subprocess that
runs outside those calls (dbt, in the same run worker) inherits neither.

MLflow 3 reads the credentials from the environment at every request, so each request must
still carry them: a gate in front of the server refuses any that does not."""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, asset, materialize

from crypto_assets.features.store import ensure_features_table, replace_features
from crypto_assets.labels.store import ensure_label_table, rewrite_labels
from crypto_assets.market import Timeframe
from crypto_assets.models.assets import build_model_asset, model_key
from crypto_assets.models.signals import build_signals_asset
from crypto_assets.models.tracking import CHAMPION, MlflowResource
from crypto_assets.resources import MarketResource, WarehouseResource
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.candles import upsert_candles
from crypto_assets.warehouse.schema import KEY_COLUMNS, VALUE_COLUMNS, ensure_ingestion_tables
from crypto_assets_tests.helpers import local_mlflow_server
from crypto_assets_tests.loopback import serving
from crypto_assets_tests.planted import panel, planted_labels

USER, PASSWORD = "crypto", "pw-7c1e5a9d"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
#: request headers not forwarded: the gate's own, and compression (bodies are relayed as they are)
NOT_FORWARDED = {"host", "authorization", "accept-encoding", "connection"}


class Gate(ThreadingHTTPServer):
    """An HTTP server on loopback that lets through only requests carrying USER and PASSWORD, to
    `upstream` (an MLflow server), or without one answers them with MLflow's "not found"."""

    def __init__(self, upstream: str | None) -> None:
        super().__init__(("127.0.0.1", 0), _GateHandler)
        self.upstream = upstream
        self.authorized = 0
        self.refused: list[str] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _GateHandler(BaseHTTPRequestHandler):
    server: Gate

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Authorization") != AUTHORIZATION:
            self.server.refused.append(f"{self.command} {self.path}")
            self._answer(401, {"error_code": "UNAUTHENTICATED", "message": "credentials required"})
            return
        self.server.authorized += 1
        if self.server.upstream is None:
            self._answer(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "nothing here"})
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in NOT_FORWARDED}
        request = urllib.request.Request(
            self.server.upstream + self.path, data=body or None, headers=headers, method=self.command
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status, kind, data = response.status, response.headers.get("Content-Type"), response.read()
        except urllib.error.HTTPError as error:
            status, kind, data = error.code, error.headers.get("Content-Type"), error.read()
        self._send(status, kind, data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _answer(self, status: int, document: dict) -> None:
        self._send(status, "application/json", json.dumps(document).encode())

    def _send(self, status: int, kind: str | None, data: bytes) -> None:
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def gate(upstream: str | None = None) -> Iterator[Gate]:
    with serving(Gate(upstream)) as server:
        yield server


def mlflow_variables(environment: dict[str, str] | None = None) -> dict[str, str]:
    """MLflow's variables (MLFLOW_*, and _MLFLOW_* of its telemetry) in `environment` or os.environ."""
    items = (os.environ if environment is None else environment).items()
    return {name: value for name, value in items if name.startswith(("MLFLOW_", "_MLFLOW_"))}


def holding_credentials(environment: dict[str, str]) -> list[str]:
    """The variables that hold the server's password, or MLflow's credential variables."""
    named = {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
    return [name for name, value in environment.items() if PASSWORD in value or name in named]


def test_each_call_sends_the_credentials_and_leaves_the_environment_as_it_was(tmp_path: Path):
    from mlflow.exceptions import MlflowException

    with gate() as server:
        resource = MlflowResource(
            tracking_uri=f"http://{USER}:{PASSWORD}@{server.host}", artifact_root=str(tmp_path)
        )
        before = mlflow_variables()
        assert resource.version_by_alias("dca", CHAMPION) is None
        client = resource.client()
        assert mlflow_variables() == before, "after a call, and with a client in hand"
        with pytest.raises(MlflowException):  # a failing call restores the environment too
            client.get_registered_model("crypto_assets.dca")
        with resource.environment() as uri:
            assert uri == f"http://{server.host}", "the URI MLflow is given has no credentials"
            assert os.environ["MLFLOW_TRACKING_PASSWORD"] == PASSWORD
            assert resource.version_by_alias("dca", CHAMPION) is None  # blocks nest
            assert os.environ["MLFLOW_TRACKING_PASSWORD"] == PASSWORD
    assert server.authorized == 3 and server.refused == []
    assert mlflow_variables() == before
    assert holding_credentials(dict(os.environ)) == []


@pytest.mark.slow
def test_the_model_and_signal_assets_leave_no_credentials_to_later_steps(tmp_path: Path):
    """Training, registration, promotion and scoring against a real MLflow server that takes
    only requests with the credentials; a later step of the same run sees none of them."""
    folder = tmp_path / "mlflow-server"
    folder.mkdir()
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    bars, features = panel(symbols=3, n_bars=5000, seed=7)
    with Warehouse(url) as warehouse, warehouse.begin() as connection:
        ensure_ingestion_tables(connection)
        upsert_candles(connection, bars[KEY_COLUMNS + VALUE_COLUMNS])
        ensure_features_table(connection)
        replace_features(connection, features, everything=True)
        ensure_label_table(connection, "dca")
        rewrite_labels(connection, "dca", "15m", planted_labels(features, strategy="dca", seed=5))
    seen: dict[str, str] = {}

    @asset(deps=[model_key("dca")])
    def later_step() -> None:
        """What a dbt step after the model, in the same run worker, would inherit."""
        seen.update(os.environ)

    base = Timeframe.parse("15m")
    with local_mlflow_server(folder) as mlflow_host, gate(f"http://{mlflow_host}") as server:
        resources = {
            "warehouse": WarehouseResource(url=url),
            "market": MarketResource(symbols="S0-USD,S1-USD,S2-USD"),
            "mlflow": MlflowResource(
                tracking_uri=f"http://{USER}:{PASSWORD}@{server.host}", artifact_root=str(tmp_path)
            ),
        }
        before = mlflow_variables()
        with DagsterInstance.ephemeral() as instance:
            trained = materialize(
                [build_model_asset("dca", base), later_step], resources=resources, instance=instance
            )
            scored = materialize([build_signals_asset(base)], resources=resources, instance=instance)
    assert trained.success and scored.success
    [model] = [e for e in trained.get_asset_materialization_events() if e.asset_key == AssetKey("dca_model")]
    assert model.materialization.metadata["promotion"].value == "promoted"  # signals scored its model
    assert server.authorized > 0 and server.refused == [], server.refused
    assert holding_credentials(seen) == [] and holding_credentials(dict(os.environ)) == []
    assert mlflow_variables(seen) == before == mlflow_variables()
