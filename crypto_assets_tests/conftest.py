"""Shared fixtures: a real warehouse of each kind, a temporary crypto_assets home."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto_assets.warehouse import Warehouse
from crypto_assets_tests.alert_receiver import Receiver, alert_receiver
from crypto_assets_tests.pg import temporary_database

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")


@pytest.fixture(autouse=True)
def no_stale_dagster_state_storage() -> Iterator[None]:
    """Each test starts without a "current" Dagster defs-state storage.

    Dagster 1.13.27 sets one when an instance is entered and resets it on exit, but an instance
    entered twice (`build_schedule_context` enters the test's instance again) leaves the disposed
    instance's storage current; the next `materialize()` without an instance then fails with
    "Attempted to resolve undefined DagsterInstance weakref" (seen here: test_schedules before
    test_raw_ohlc).
    """
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on loopback that records the alerts it receives."""
    with alert_receiver() as receiver:
        yield receiver


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty warehouse: a DuckDB file, or a new database on the test PostgreSQL."""
    if request.param == "duckdb":
        yield f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
        return
    with temporary_database("crypto_assets_test") as url:
        yield url


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[Warehouse]:
    db = Warehouse(warehouse_url)
    yield db
    db.dispose()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty CRYPTO_ASSETS_HOME and DAGSTER_HOME, with no other crypto_assets variables set."""
    for name in list(os.environ):
        if name.startswith("CRYPTO_ASSETS_") and name != "CRYPTO_ASSETS_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRYPTO_ASSETS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    return tmp_path / "home"
