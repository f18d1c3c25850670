"""Shared fixtures: a real warehouse of each kind, a temporary crypto_assets home."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crypto_assets.warehouse import Warehouse
from crypto_assets_tests.pg import temporary_database

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")


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


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the process once pytest is done with it.

    Great Expectations keeps DuckDB objects alive until interpreter teardown, where DuckDB's
    bindings then print dozens of lines of "leaked instance" warnings after pytest's summary.
    Nothing is left to clean up at this point, so skip the teardown and keep the summary last.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
