"""The alerts sensor: one message per change of state, to Slack and/or a webhook, or the log.

Open-source Dagster records freshness changes, run failures and check results but delivers
nothing. This sensor reads them (crypto_assets.automation.alert_changes and alert_checks), queues
one message per change and destination in its cursor, and sends what is due
(crypto_assets.automation.alert_queue). The cursor is stored by Dagster with the sensor's ticks,
so neither a daemon restart nor a receiver that is down loses a message or repeats one: a failed
delivery (timeout, 429, 5xx) stays queued and is retried with backoff on later ticks; a receiver
that answers any other 4xx is reported once in the sensor's log and the message is dropped; a
URL that cannot be used is reported once, naming its variable, and its messages wait.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
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

from crypto_assets.automation.alert_changes import freshness_changes, model_changes, run_failures
from crypto_assets.automation.alert_checks import LEGACY_FAILING, check_changes
from crypto_assets.automation.alert_delivery import Destination
from crypto_assets.automation.alert_queue import Queued, deliver, enqueue

SENSOR_NAME = "alerts"
INTERVAL_SECONDS = 30


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
class AlertsCursor:
    """What the sensor remembers between ticks (serialized as its Dagster cursor)."""

    freshness: dict[str, str] = field(default_factory=dict)
    #: per check, the partitions whose latest result failed ("" for the whole check)
    checks: dict[str, list[str]] = field(default_factory=dict)
    checks_after: int | None = None  # storage id of the newest check result read
    runs: str | None = None
    models: dict[str, int] = field(default_factory=dict)  # per model, its newest record read
    queue: list[Queued] = field(default_factory=list)
    unusable: list[str] = field(default_factory=list)  # destinations whose bad URL was reported

    @classmethod
    def parse(cls, text: str | None) -> AlertsCursor:
        if not text:
            return cls()
        data: dict[str, Any] = json.loads(text)
        data["queue"] = [Queued(**item) for item in data.get("queue", [])]
        # a cursor of an earlier version: checks were "failed"/"passed" per check, models one id
        data["checks"] = {
            name: [LEGACY_FAILING] if value == "failed" else [] if value == "passed" else value
            for name, value in data.get("checks", {}).items()
        }
        if "models_after" in data and data["models_after"] is not None and not data.get("models"):
            data["models"] = {"*": data["models_after"]}
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def build_alerts_sensor(
    models: Sequence[AssetKey], interval_seconds: int = INTERVAL_SECONDS
) -> SensorDefinition:
    """The alerts sensor over every asset and check of the code location; `models` are the assets
    whose materializations say whether a model was promoted."""

    @sensor(
        name=SENSOR_NAME,
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=interval_seconds,
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
        queue = enqueue(cursor.queue, new, destinations, context.log)
        tick = deliver(queue, destinations, cursor.unusable, alerting.timeout_seconds, context.log)
        cursor.queue, cursor.unusable = tick.queue, sorted(tick.unusable)
        context.update_cursor(cursor.dump())
        waiting = f", {len(cursor.queue)} waiting" if cursor.queue else ""
        later = f" ({tick.left_for_later} due, sent on the next ticks)" if tick.left_for_later else ""
        where = ", ".join(destinations) or "the log only"
        return SkipReason(f"{len(new)} change(s), {tick.sent} message(s) sent to {where}{waiting}{later}")

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
    partitioned = {key: graph.get(key).partitions_def is not None for key in graph.asset_check_keys}
    checks, cursor.checks, cursor.checks_after = check_changes(
        instance, partitioned, cursor.checks, cursor.checks_after
    )
    legacy = cursor.models.pop("*", None)  # one storage id for every model, from an earlier version
    known = {key.to_user_string(): legacy for key in models} if legacy is not None else cursor.models
    promotions, cursor.models = model_changes(instance, models, known)
    return [*failed_runs, *checks, *stale, *promotions]
