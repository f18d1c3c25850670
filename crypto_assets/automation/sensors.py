"""The sensor that keeps features and strategy labels following the candles."""

from collections.abc import Sequence

from dagster import AssetsDefinition, AutomationConditionSensorDefinition, DefaultSensorStatus


def build_features_and_labels_sensor(
    assets: Sequence[AssetsDefinition],
) -> AutomationConditionSensorDefinition:
    return AutomationConditionSensorDefinition(
        "features_and_labels_automation",
        target=list(assets),
        # On by default, like transform_automation: features and labels follow new candles
        # (and new dbt buckets) without anyone launching them; runs queue on the warehouse pool.
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Recomputes features and strategy labels after the candles they read change.",
    )
