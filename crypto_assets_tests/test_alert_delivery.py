"""Delivering alerts over real HTTP on loopback: unusable URLs, Retry-After, a backlog after an
outage, the queue's bound and the order of messages to one destination."""

from collections.abc import Iterator

import pytest
from dagster import AssetMaterialization, DagsterInstance, instance_for_test

from crypto_assets.automation import alert_queue
from crypto_assets.automation.alert_delivery import Destination, Outcome, retry_after, send
from crypto_assets.automation.alerts import AlertsResource
from crypto_assets_tests.alert_deployment import Deployment, clock
from crypto_assets_tests.alert_receiver import Receiver, alert_receiver

SECRET = "T000/B000/SECRET-TOKEN"


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


def promote(instance: DagsterInstance, versions: range) -> None:
    """One "promoted" alert per version: the cheapest real change to alert on."""
    for version in versions:
        instance.report_runless_asset_event(
            AssetMaterialization(
                "dca_model",
                metadata={"promotion": "promoted", "model_version": version, "promotion_reason": "r"},
            )
        )


def versions(bodies: list[dict]) -> list[int]:
    return [body["details"]["version"] for body in bodies]


@pytest.mark.parametrize(
    "url",
    [
        f"hooks.slack.com/services/{SECRET}",  # no scheme: urllib's ValueError quotes it
        f"https://hooks.slack.com/services/{SECRET} x",  # a space: http.client's InvalidURL quotes it
        f"https://hooks.slack.com/services/{SECRET}\n",
        f"https://hooks.slack.com:44x3/services/{SECRET}",  # a port that is not a number
        f"ftp://hooks.slack.com/services/{SECRET}",
        f"https:///services/{SECRET}",
    ],
)
def test_an_unusable_url_is_an_outcome_that_quotes_none_of_it(url: str):
    attempt = send(Destination("slack", url), {"state": "x", "text": "t"})
    assert attempt.outcome is Outcome.UNUSABLE
    assert "SECRET" not in attempt.detail and "slack.com" not in attempt.detail
    assert "SECRET" not in repr(Destination("slack", url))


def test_a_url_urllib_refuses_past_the_checks_is_unusable_not_an_exception(receiver: Receiver):
    attempt = send(Destination("webhook", receiver.url + "/SECRET-\u00e9"), {"state": "x", "text": "t"})
    assert attempt.outcome is Outcome.UNUSABLE and "SECRET" not in attempt.detail
    assert receiver.bodies == []


def test_a_mistyped_url_is_reported_once_by_its_variable_and_the_other_destination_works(
    instance: DagsterInstance, receiver: Receiver
):
    slack = f"hooks.slack.com/services/{SECRET}"
    deployment = Deployment(instance, AlertsResource(slack_webhook_url=slack, webhook_url=receiver.url))
    deployment.tick()
    promote(instance, range(1, 3))
    deployment.tick()
    promote(instance, range(3, 4))
    cursor = deployment.tick()
    assert versions(receiver.bodies) == [1, 2, 3]  # the webhook got every alert
    reported = [line for line in deployment.logs if "SLACK_WEBHOOK_URL" in line]
    assert len(reported) == 1 and reported[0].startswith("slack: the URL in SLACK_WEBHOOK_URL cannot be used")
    seen = " ".join([*deployment.logs, *deployment.skip_messages, deployment.cursor])
    assert "SECRET" not in seen and "hooks.slack.com" not in seen
    assert [item.destination for item in cursor.queue] == ["slack"] * 3  # waiting for the fix

    with alert_receiver() as fixed:  # the variable is fixed (the code location reloaded)
        deployment.alerting = AlertsResource(slack_webhook_url=fixed.url, webhook_url=receiver.url)
        assert deployment.tick().queue == []
        assert [text.split(": version ")[1][:1] for text in fixed.texts()] == ["1", "2", "3"]
    assert "slack: the URL in SLACK_WEBHOOK_URL works again" in deployment.logs


def test_retry_after_is_honoured_and_bounded(instance: DagsterInstance, receiver: Receiver, monkeypatch):
    deployment = Deployment(instance, AlertsResource(webhook_url=receiver.url))
    deployment.tick()
    receiver.answers = [(429, {"Retry-After": "120"})]
    promote(instance, range(1, 2))
    deployment.tick()
    told = "webhook did not take an alert (HTTP 429 Too Many Requests); attempt 1, next in 120 s"
    assert f"{told} (as the receiver asked)" in deployment.logs
    monkeypatch.setattr(alert_queue, "time", clock(60))  # past our own first backoff (30 s)
    deployment.tick()
    assert len(receiver.bodies) == 1
    receiver.answers = [(503, {"Retry-After": "86400"})]
    monkeypatch.setattr(alert_queue, "time", clock(125))
    deployment.tick()
    assert len(receiver.bodies) == 2
    assert any(line.endswith("attempt 2, next in 3600 s (as the receiver asked)") for line in deployment.logs)
    monkeypatch.setattr(alert_queue, "time", clock(125 + 3601))
    assert deployment.tick().queue == []
    assert versions(receiver.delivered()) == [1]


def test_retry_after_as_a_date_or_garbage():
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 90) == 90
    assert retry_after("in a while") is None and retry_after(None) is None and retry_after("-5") is None
    assert retry_after("0") == 0


def test_a_backlog_after_an_outage_goes_out_over_several_ticks_each_saving_its_progress(
    instance: DagsterInstance, receiver: Receiver, monkeypatch
):
    deployment = Deployment(instance, AlertsResource(webhook_url=receiver.url))
    deployment.tick()
    receiver.otherwise = 503  # down
    promote(instance, range(1, 121))
    assert len(deployment.tick().queue) == 120 and len(receiver.bodies) == 1  # one probe per tick
    receiver.otherwise = 200  # back, with 120 messages due
    monkeypatch.setattr(alert_queue, "time", clock(3600))
    sizes = [len(deployment.tick().queue) for _ in range(3)]
    assert sizes == [120 - alert_queue.MAX_SENDS_PER_TICK, 120 - 2 * alert_queue.MAX_SENDS_PER_TICK, 0]
    assert "sent on the next ticks" in deployment.skip_messages[-3]
    assert versions(receiver.delivered()) == list(range(1, 121))  # each once, in order


def test_a_slow_receiver_stops_the_tick_at_its_time_budget(
    instance: DagsterInstance, receiver: Receiver, monkeypatch
):
    deployment = Deployment(instance, AlertsResource(webhook_url=receiver.url))
    deployment.tick()
    promote(instance, range(1, 21))
    receiver.delay_seconds = 0.2  # each message takes a while, within the timeout
    monkeypatch.setattr(alert_queue, "SEND_BUDGET_SECONDS", 0.5)
    first = len(deployment.tick().queue)
    assert 0 < first < 20  # stopped starting new sends, its progress saved
    receiver.delay_seconds = 0.0
    while deployment.tick().queue:
        pass
    assert versions(receiver.delivered()) == list(range(1, 21))


def test_past_the_bound_the_oldest_messages_are_dropped_and_counted(
    instance: DagsterInstance, receiver: Receiver, monkeypatch
):
    monkeypatch.setattr(alert_queue, "MAX_QUEUED", 10)
    deployment = Deployment(instance, AlertsResource(webhook_url=receiver.url))
    deployment.tick()
    receiver.otherwise = 503
    promote(instance, range(1, 16))
    assert len(deployment.tick().queue) == 10
    assert "5 undelivered alert(s) dropped, the oldest: more than 10 waiting" in deployment.logs
    receiver.otherwise = 200
    monkeypatch.setattr(alert_queue, "time", clock(3600))
    assert deployment.tick().queue == []
    assert versions(receiver.delivered()) == list(range(6, 16))


def test_a_message_waits_behind_an_older_one_to_the_same_destination(
    instance: DagsterInstance, receiver: Receiver, monkeypatch
):
    deployment = Deployment(instance, AlertsResource(webhook_url=receiver.url))
    deployment.tick()
    receiver.answers = [503]
    promote(instance, range(1, 2))
    deployment.tick()  # 1 failed: retried in 30 s
    promote(instance, range(2, 3))
    deployment.tick()  # 2 must not overtake 1
    assert versions(receiver.bodies) == [1]
    monkeypatch.setattr(alert_queue, "time", clock(31))
    deployment.tick()
    assert versions(receiver.delivered()) == [1, 2]
