"""The alerts sensor: one message per change of state, delivered over real HTTP on loopback.

Runs, checks and materializations are real (executed against a test instance); freshness
states are recorded the way the daemon records them (its end-to-end path is in
test_alerts_daemon.py).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import (
    AssetMaterialization,
    DagsterInstance,
    EnvVar,
    instance_for_test,
    materialize,
)
from dagster._core.definitions.freshness import FreshnessState

from crypto_assets.automation import alert_queue
from crypto_assets.automation.alerts import AlertsResource
from crypto_assets.resources import CandleSourceResource, MarketResource, WarehouseResource, alerting_resource
from crypto_assets_tests.alert_deployment import DAY, Deployment, candles, clock, dca_model, stale
from crypto_assets_tests.alert_receiver import Receiver, alert_receiver
from crypto_assets_tests.helpers import RAW_OHLC


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


def webhook(receiver: Receiver) -> AlertsResource:
    return AlertsResource(webhook_url=receiver.url, timeout_seconds=1.0)


def test_a_failed_run_is_reported_once_with_asset_partition_symbols_and_error(
    instance: DagsterInstance, receiver: Receiver, tmp_path: Path
):
    missing = tmp_path / "no-such-folder"
    resources = {
        "warehouse": WarehouseResource(url=f"duckdb:///{tmp_path / 'w.duckdb'}"),
        "source": CandleSourceResource(spec=f"csv:{missing}"),
        "market": MarketResource(symbols="BTC-USD,ETH-USD"),
    }
    deployment = Deployment(instance, webhook(receiver), assets=[RAW_OHLC, dca_model], resources=resources)
    deployment.tick()  # the first tick starts from now: nothing old is reported
    result = materialize(
        [RAW_OHLC],
        instance=instance,
        partition_key=DAY,
        run_config={"ops": {"raw_ohlc": {"config": {"symbols": ["BTC-USD"]}}}},
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    deployment.tick()
    deployment.tick()  # the failure persists: nothing new

    (body,) = receiver.bodies
    assert body["kind"] == "run_failed" and body["subject"] == "raw_ohlc"
    assert body["details"]["partition"] == DAY and body["details"]["symbols"] == ["BTC-USD"]
    assert body["details"]["run_id"] == result.run_id
    assert str(missing) in body["details"]["error"]
    assert "\n" not in body["text"] and f"partition {DAY}" in body["text"] and "BTC-USD" in body["text"]


def test_runs_dagster_will_retry_are_not_reported(instance: DagsterInstance, receiver: Receiver):
    deployment = Deployment(instance, webhook(receiver))
    deployment.tick()
    result = materialize(
        [candles],
        instance=instance,
        partition_key=DAY,
        run_config={"ops": {"candles": {"config": {"fail_with": "flaky"}}}},
        tags={"dagster/will_retry": "true"},
        raise_on_error=False,
    )
    assert not result.success
    assert not deployment.run(fail_with="exchange answered 502 for ETH-USD")
    deployment.tick()
    assert [b["details"]["error"] for b in receiver.bodies] == [
        "RuntimeError: exchange answered 502 for ETH-USD"
    ]


def test_a_blocking_check_that_fails_is_reported_once_and_again_when_it_recovers(
    instance: DagsterInstance, receiver: Receiver
):
    deployment = Deployment(instance, webhook(receiver))
    deployment.tick()
    assert deployment.run(valid=True)
    deployment.tick()
    assert receiver.bodies == []  # passing from the start is no change
    assert not deployment.run(valid=False)  # a failed blocking check fails the run too
    deployment.tick()
    assert deployment.run(valid=False) is False
    deployment.tick()
    assert deployment.run(valid=True)
    deployment.tick()
    kinds = [b["kind"] for b in receiver.bodies]
    # one run failure per failed run, one check failure for the state, one recovery
    assert kinds.count("check_failed") == 1 and kinds.count("check_recovered") == 1
    assert kinds.count("run_failed") == 2
    failed = next(b for b in receiver.bodies if b["kind"] == "check_failed")
    assert failed["subject"] == "candles:candles_valid" and failed["details"]["blocking"] is True
    assert "blocking" in failed["text"] and "3 candles with high < low" in failed["text"]


def test_an_asset_that_goes_stale_is_reported_once_and_when_it_recovers(
    instance: DagsterInstance, receiver: Receiver
):
    deployment = Deployment(instance, webhook(receiver))
    assert deployment.run()
    deployment.tick()
    stale(instance, "candles", FreshnessState.PASS, FreshnessState.WARN)
    deployment.tick()
    assert receiver.bodies == []  # late is not stale yet
    stale(instance, "candles", FreshnessState.WARN, FreshnessState.FAIL)
    deployment.tick()
    deployment.tick()
    stale(instance, "candles", FreshnessState.FAIL, FreshnessState.WARN)  # better, not fresh
    deployment.tick()
    stale(instance, "candles", FreshnessState.WARN, FreshnessState.PASS)
    deployment.tick()
    assert [(b["kind"], b["subject"]) for b in receiver.bodies] == [
        ("asset_stale", "candles"),
        ("asset_recovered", "candles"),
    ]
    assert "allowed 60 min" in receiver.bodies[0]["text"] and "UTC" in receiver.bodies[0]["text"]


def test_model_promotions_and_refusals_are_reported(instance: DagsterInstance, receiver: Receiver):
    deployment = Deployment(instance, webhook(receiver))
    deployment.tick()
    for metadata in (
        {"promotion": "promoted", "model_version": 1, "promotion_reason": "first edge", "oos_auc": 0.61},
        {
            "promotion": "refused",
            "model_version": 2,
            "champion_version": 1,
            "promotion_reason": "log loss worse",
        },
        {"promotion": "skipped", "promotion_reason": "800 labels < 1000"},
    ):
        instance.report_runless_asset_event(AssetMaterialization("dca_model", metadata=metadata))
    deployment.tick()
    assert receiver.texts() == [
        "dca_model: version 1 is the new champion (first edge)",
        "dca_model: version 2 not promoted, champion stays version 1: log loss worse",
    ]


def test_a_receiver_that_fails_gets_the_alert_later_with_backoff(
    instance: DagsterInstance, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    deployment = Deployment(instance, webhook(receiver))
    deployment.tick()
    receiver.answers = [503]
    assert not deployment.run(fail_with="boom")
    queued = deployment.tick()
    assert len(receiver.bodies) == 1 and len(queued.queue) == 1 and queued.queue[0].attempts == 1
    deployment.tick()  # too early for the retry
    assert len(receiver.bodies) == 1

    receiver.delay_seconds = 2.0  # longer than the sender waits: a timeout
    monkeypatch.setattr(alert_queue, "time", clock(60))
    still = deployment.tick()
    assert len(receiver.bodies) == 2 and still.queue[0].attempts == 2
    assert (
        "webhook did not take an alert (not reachable (timed out)); attempt 2, next in 60 s"
        in deployment.logs
    )

    receiver.delay_seconds = 0.0
    monkeypatch.setattr(alert_queue, "time", clock(600))
    done = deployment.tick()
    assert done.queue == []
    assert len(receiver.bodies) == 3 and receiver.bodies[0] == receiver.bodies[2]  # the same alert
    deployment.tick()
    assert len(receiver.bodies) == 3  # and never again


def test_a_receiver_that_answers_4xx_is_reported_once_and_not_retried(
    instance: DagsterInstance, receiver: Receiver
):
    deployment = Deployment(instance, webhook(receiver))
    deployment.tick()
    receiver.answers = [404]
    assert not deployment.run(fail_with="boom")
    assert deployment.tick().queue == []
    deployment.tick()
    assert len(receiver.bodies) == 1
    refused = [line for line in deployment.logs if "refused an alert" in line]
    assert len(refused) == 1 and "HTTP 404" in refused[0]


def test_slack_gets_its_format_the_webhook_json_and_no_url_is_logged_or_stored(instance: DagsterInstance):
    with alert_receiver() as slack, alert_receiver() as hook:
        slack.answers = [500]  # so a retry is queued in the cursor too
        deployment = Deployment(instance, AlertsResource(slack_webhook_url=slack.url, webhook_url=hook.url))
        deployment.tick()
        assert not deployment.run(fail_with="boom")
        cursor = deployment.tick()
        assert set(slack.bodies[0]) == {"text"} and slack.bodies[0]["text"].startswith(":red_circle: run ")
        assert hook.bodies[0]["kind"] == "run_failed" and hook.bodies[0]["source"] == "crypto_assets"
        seen = " ".join([*deployment.logs, *deployment.skip_messages, deployment.cursor])
        assert cursor.queue and "secret-token" not in seen and "127.0.0.1" not in seen


def test_without_a_destination_alerts_are_logged(instance: DagsterInstance):
    deployment = Deployment(instance, AlertsResource())
    deployment.tick()
    assert not deployment.run(fail_with="boom")
    cursor = deployment.tick()
    assert cursor.queue == []
    assert any(line.startswith("alert: run ") for line in deployment.logs)
    assert "sent to the log only" in deployment.skip_messages[-1]


def test_the_code_location_keeps_webhook_urls_as_environment_variables(monkeypatch: pytest.MonkeyPatch):
    """What the UI shows of a resource set from the environment is the variable's name."""
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.example/services/T/B/secret-token")
    alerting = alerting_resource()
    assert (
        isinstance(alerting.slack_webhook_url, EnvVar)
        and alerting.slack_webhook_url.env_var_name == "SLACK_WEBHOOK_URL"
    )
    assert alerting.webhook_url is None
