"""The alerts sensor: one message per change of state, to Slack and/or a webhook, or the log.

Open-source Dagster records freshness changes, run failures and check results but delivers
nothing. This sensor reads them (crypto_assets.automation.alert_changes), queues one message per
change and destination in its cursor, and sends what is due. The cursor is stored by Dagster
with the sensor's ticks, so neither a daemon restart nor a receiver that is down loses a message
or repeats one: a failed delivery (timeout, 429, 5xx) stays queued and is retried with backoff
on later ticks; a receiver that answers any other 4xx is reported once in the sensor's log and
the message is dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dagster import (
    AssetKey,
    ConfigurableResource,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from crypto_assets.automation.alert_changes import (
    check_changes,
    freshness_changes,
    model_changes,
    run_failures,
)
from crypto_assets.automation.alert_delivery import Destination, Outcome, retry_delay, send

SENSOR_NAME = "alerts"
#: queued messages kept while receivers are down; the oldest go first, and the log says how many
MAX_QUEUED = 1000


class AlertsResource(ConfigurableResource):
    """Where alerts go. Both URLs are secrets: set them through the environment
    (SLACK_WEBHOOK_URL, CRYPTO_ASSETS_ALERT_WEBHOOK) so the UI shows only the variable's name."""

    slack_webhook_url: str | None = None
    webhook_url: str | None = None
    timeout_seconds: float = 5.0

    def destinations(self) -> list[Destination]:
        found = [("slack", self.slack_webhook_url), ("webhook", self.webhook_url)]
        return [Destination(name, url.strip()) for name, url in found if url and url.strip()]


@dataclass
class Queued:
    alert: dict[str, Any]
    destination: str
    attempts: int = 0
    next_try: float = 0.0


@dataclass
class AlertsCursor:
    """What the sensor remembers between ticks (serialized as its Dagster cursor)."""

    freshness: dict[str, str] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    runs: str | None = None
    models_after: int | None = None
    queue: list[Queued] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | None) -> AlertsCursor:
        if not text:
            return cls()
        data = json.loads(text)
        data["queue"] = [Queued(**item) for item in data.get("queue", [])]
        return cls(**data)

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def build_alerts_sensor(models: Sequence[AssetKey]) -> SensorDefinition:
    """The alerts sensor over every asset and check of the code location; `models` are the assets
    whose materializations say whether a model was promoted."""

    @sensor(
        name=SENSOR_NAME,
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=(
            "Sends one message per change: an asset goes stale or recovers, a run fails, a check "
            "fails or passes again, a model is promoted or refused. To Slack (SLACK_WEBHOOK_URL) "
            "and/or a JSON webhook (CRYPTO_ASSETS_ALERT_WEBHOOK); logged here when neither is set."
        ),
    )
    def alerts(context: SensorEvaluationContext, alerting: AlertsResource) -> SkipReason:
        cursor = AlertsCursor.parse(context.cursor)
        new = detect_changes(context, cursor, models)
        destinations = {d.name: d for d in alerting.destinations()}
        for item in new:
            context.log.info(f"alert: {item['text']}")
            cursor.queue.extend(Queued(item, name) for name in destinations)
        if len(cursor.queue) > MAX_QUEUED:
            dropped = len(cursor.queue) - MAX_QUEUED
            context.log.warning(f"{dropped} undelivered alert(s) dropped: more than {MAX_QUEUED} queued")
            cursor.queue = cursor.queue[dropped:]
        sent = deliver_due(context, cursor, destinations, alerting.timeout_seconds)
        context.update_cursor(cursor.dump())
        waiting = f", {len(cursor.queue)} waiting to be retried" if cursor.queue else ""
        where = ", ".join(destinations) or "the log only"
        return SkipReason(f"{len(new)} change(s), {sent} message(s) sent to {where}{waiting}")

    return alerts


def detect_changes(
    context: SensorEvaluationContext, cursor: AlertsCursor, models: Sequence[AssetKey]
) -> list[dict[str, Any]]:
    """Every change since the cursor, oldest kind of evidence first; updates `cursor`."""
    instance = context.instance
    graph = context.repository_def.asset_graph
    policies = {node.key: node.freshness_policy for node in graph.asset_nodes if node.freshness_policy}
    stale, cursor.freshness = freshness_changes(instance, policies, cursor.freshness)
    failed_runs, cursor.runs = run_failures(instance, cursor.runs)
    checks, cursor.checks = check_changes(instance, sorted(graph.asset_check_keys), cursor.checks)
    promotions, cursor.models_after = model_changes(instance, models, cursor.models_after)
    return [*failed_runs, *checks, *stale, *promotions]


def deliver_due(
    context: SensorEvaluationContext,
    cursor: AlertsCursor,
    destinations: dict[str, Destination],
    timeout: float,
) -> int:
    """Send each queued message whose time has come. A destination that fails is not tried again
    in this tick, so one slow receiver cannot hold the sensor past its time limit."""
    now, sent, down, keep = time.time(), 0, set(), []
    for item in cursor.queue:
        destination = destinations.get(item.destination)
        if destination is None:  # its variable was unset since: nowhere left to send it
            context.log.warning(f"alert for {item.destination} dropped: no longer configured")
            continue
        if item.next_try > now or item.destination in down:
            keep.append(item)
            continue
        attempt = send(destination, item.alert, timeout)
        if attempt.outcome is Outcome.DELIVERED:
            sent += 1
        elif attempt.outcome is Outcome.REJECTED:
            context.log.error(
                f"{destination.name} refused an alert ({attempt.detail}); not retried: check the "
                f"receiver's configuration. The alert was: {item.alert['text']}"
            )
        else:
            item.attempts += 1
            item.next_try = now + retry_delay(item.attempts)
            down.add(item.destination)
            keep.append(item)
            context.log.warning(
                f"{destination.name} did not take an alert ({attempt.detail}); attempt {item.attempts}, "
                f"next in {retry_delay(item.attempts):.0f} s"
            )
    cursor.queue = keep
    return sent
