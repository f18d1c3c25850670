"""A small code location for the daemon test of the alerts sensor (test_alerts_daemon.py).

One asset with the shortest freshness window Dagster allows (one minute) that fails on demand,
and the project's own alerts sensor and resource, configured from the environment as in
production; the sensor ticks every 5 s (the daemon's shortest loop) instead of every 30 s.
"""

from datetime import timedelta

from dagster import Config, Definitions, EnvVar, FreshnessPolicy, asset

from crypto_assets.automation.alerts import AlertsResource, build_alerts_sensor


class HeartbeatConfig(Config):
    fail_with: str = ""


@asset(freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(minutes=1)))
def heartbeat(config: HeartbeatConfig) -> None:
    """Materialized by the test; stale one minute later."""
    if config.fail_with:
        raise RuntimeError(config.fail_with)


defs = Definitions(
    assets=[heartbeat],
    sensors=[build_alerts_sensor([], interval_seconds=5)],
    resources={"alerting": AlertsResource(webhook_url=EnvVar("CRYPTO_ASSETS_ALERT_WEBHOOK"))},
)
