"""Secrets set in the environment never reach what a CLI run records.

`crypto-assets backfill` records its runs in the Dagster instance, which the UI shows: run config,
the job snapshot (resource config included), every event. Webhook URLs and a warehouse password
must appear in none of them, nor in any file the run leaves, nor in the command's output.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from dagster import DagsterInstance
from dagster._serdes import serialize_value

from crypto_assets_tests.helpers import run
from crypto_assets_tests.pg import temporary_database

SLACK = "https://hooks.slack.example/services/T000/B000/slack-secret-token"
WEBHOOK = "http://127.0.0.1:9/alerts/webhook-secret-token"
PASSWORD = "warehouse-secret-pw"  # the test server trusts local connections: it is ignored


def recorded_text(dagster_home: Path) -> str:
    """Everything the instance holds about its runs, as text: run configs, tags, job snapshots and
    every event of every run."""
    parts = []
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        for record in instance.get_run_records():
            dagster_run = record.dagster_run
            parts.append(json.dumps(dagster_run.run_config, default=str))
            parts.append(json.dumps(dagster_run.tags))
            if dagster_run.job_snapshot_id:
                parts.append(serialize_value(instance.get_job_snapshot(dagster_run.job_snapshot_id)))
            parts.extend(serialize_value(entry) for entry in instance.all_logs(dagster_run.run_id))
    return "\n".join(parts)


def files_holding(root: Path, secret: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_with_password(request: pytest.FixtureRequest, home: Path):
    """The warehouse URL as a user sets it; on PostgreSQL with a password in it."""
    if request.param == "duckdb":
        yield f"duckdb:///{home / 'warehouse.duckdb'}", None
        return
    with temporary_database("crypto_assets_secrets") as url:
        parts = urlsplit(url)
        netloc = f"{parts.username or 'postgres'}:{PASSWORD}@{parts.hostname}:{parts.port or 5432}"
        yield urlunsplit(parts._replace(netloc=netloc)), PASSWORD


@pytest.mark.slow
def test_a_backfill_records_no_secret(home: Path, warehouse_with_password, monkeypatch: pytest.MonkeyPatch):
    url, password = warehouse_with_password
    monkeypatch.setenv("SLACK_WEBHOOK_URL", SLACK)
    monkeypatch.setenv("CRYPTO_ASSETS_ALERT_WEBHOOK", WEBHOOK)
    monkeypatch.setenv("CRYPTO_ASSETS_WAREHOUSE_URL", url)
    monkeypatch.setenv("CRYPTO_ASSETS_SYMBOLS", "BTC-USD,ETH-USD")
    today = datetime.now(UTC).date().isoformat()
    result = run("backfill", "--start", today, "--end", today)
    assert result.returncode == 0, result.stderr
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    recorded = recorded_text(dagster_home)
    assert "SLACK_WEBHOOK_URL" in recorded  # the resource is there, by its variable's name
    secrets = [SLACK, "slack-secret-token", WEBHOOK, "webhook-secret-token"] + (
        [password] if password else []
    )
    for secret in secrets:
        assert secret not in recorded, f"{secret!r} is in the instance's run records"
        assert secret not in result.stdout + result.stderr
        assert not files_holding(dagster_home, secret), secret
        assert not files_holding(home, secret), secret
