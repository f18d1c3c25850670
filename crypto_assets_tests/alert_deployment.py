"""A test deployment for the alerts sensor: a small code location, a test instance, the sensor's
cursor carried from tick to tick and what it logged, as the daemon would keep them."""

import logging
import time as real_time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Config,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    FreshnessPolicy,
    MaterializeResult,
    asset,
    build_sensor_context,
    materialize,
)
from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

from crypto_assets.automation.alerts import AlertsCursor, AlertsResource, build_alerts_sensor

DAY = "2025-03-04"


class CandlesConfig(Config):
    symbols: list[str] = []
    fail_with: str = ""
    valid: bool = True


@asset(
    partitions_def=DailyPartitionsDefinition(start_date="2025-01-01"),
    freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(hours=1)),
    check_specs=[
        AssetCheckSpec("candles_valid", asset="candles", blocking=True, description="Candles are sane.")
    ],
)
def candles(config: CandlesConfig) -> Iterator[MaterializeResult | AssetCheckResult]:
    """A stand-in for an asset whose run fails or whose blocking check fails on demand."""
    if config.fail_with:
        raise RuntimeError(config.fail_with)
    yield MaterializeResult()
    yield AssetCheckResult(
        passed=config.valid, severity=AssetCheckSeverity.ERROR, description="3 candles with high < low"
    )


@asset
def dca_model() -> None:
    """Stands in for a model asset; its materializations are reported below."""


SENSOR = build_alerts_sensor([AssetKey("dca_model")])


class Deployment:
    """A test instance, a code location with the alerts sensor, and the sensor's cursor."""

    def __init__(
        self, instance: DagsterInstance, alerting: AlertsResource, assets: list | None = None, resources=None
    ) -> None:
        self.instance = instance
        self.alerting = alerting
        self.defs = Definitions(assets=assets or [candles, dca_model], sensors=[SENSOR], resources=resources)
        self.cursor: str | None = None
        self.skip_messages: list[str] = []
        self.logs: list[str] = []  # what the sensor logged, as the UI's tick log shows it

    def tick(self) -> AlertsCursor:
        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            definitions=self.defs,
            resources={"alerting": self.alerting},
        )
        context.log.addHandler(ListHandler(self.logs))
        result = SENSOR(context)
        self.skip_messages.append(result.skip_message)
        self.cursor = context.cursor
        return AlertsCursor.parse(self.cursor)

    def run(self, partition: str = DAY, **config) -> bool:
        return materialize(
            [candles],
            instance=self.instance,
            partition_key=partition,
            run_config={"ops": {"candles": {"config": config}}},
            raise_on_error=False,
        ).success


def stale(instance: DagsterInstance, key: str, before: FreshnessState, after: FreshnessState) -> None:
    """What the daemon records when it finds an asset's freshness changed."""
    instance.report_runless_asset_event(
        FreshnessStateChange(
            key=AssetKey(key), previous_state=before, new_state=after,
            state_change_timestamp=datetime.now(UTC).timestamp(),
        )
    )  # fmt: skip


class ListHandler(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def clock(ahead_seconds: float):
    """A stand-in for the `time` module whose clock is `ahead_seconds` in the future."""

    class Clock:
        @staticmethod
        def time() -> float:
            return real_time.time() + ahead_seconds

    return Clock
