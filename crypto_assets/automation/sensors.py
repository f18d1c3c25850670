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


def build_signals_sensor(signals: AssetsDefinition) -> AutomationConditionSensorDefinition:
    return AutomationConditionSensorDefinition(
        "signals_automation",
        target=[signals],
        # On by default: the point of signals is the newest bar, scored as soon as it has features.
        # The models it reads retrain on their own cadence, not on every bar.
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Scores the newest closed bars with each strategy's champion after features update.",
    )
