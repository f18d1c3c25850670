"""Features and labels follow new candles on their own, through the features_and_labels sensor."""

from datetime import date

from dagster import (
    AssetMaterialization,
    DagsterInstance,
    DefaultSensorStatus,
    Definitions,
    evaluate_automation_conditions,
)

from crypto_assets.automation.sensors import build_features_and_labels_sensor
from crypto_assets.features.assets import build_features
from crypto_assets.ingestion.assets import build_raw_ohlc
from crypto_assets.labels.assets import build_label_assets
from crypto_assets.market import Timeframe
from crypto_assets.resources import build_resources
from crypto_assets.settings import load_settings
from crypto_assets.transform.assets import build_transform

BASE = Timeframe.parse("15m")
DERIVED = {"features", "strategy_dca_labels", "strategy_swing_labels", "strategy_channel_labels"}
MODELS = {"ohlc_1h", "ohlc_4h", "ohlc_1d", "ohlc_today", "ohlc_recent"}


def code_location() -> tuple[Definitions, object]:
    transform = build_transform(BASE, "duckdb:///unused.duckdb")
    derived = [build_features(BASE), *build_label_assets()]
    sensor = build_features_and_labels_sensor(derived)
    defs = Definitions(
        assets=[build_raw_ohlc(date(2025, 1, 1), BASE), *transform.assets, *derived],
        sensors=[*transform.sensors, sensor],
        resources={**build_resources(load_settings({})), **transform.resources},
    )
    return defs, sensor


def test_new_candles_request_models_features_and_labels_once():
    defs, _ = code_location()
    instance = DagsterInstance.ephemeral()

    def requested(result) -> set[str]:
        return {r.key.to_user_string() for r in result.results if r.true_subset.size}

    first = evaluate_automation_conditions(defs=defs, instance=instance)
    assert requested(first) == set()
    instance.report_runless_asset_event(AssetMaterialization("raw_ohlc", partition="2025-03-01"))
    second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert requested(second) == MODELS | DERIVED
    third = evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    assert requested(third) == set()


def test_the_sensor_is_on_and_targets_features_and_labels():
    defs, sensor = code_location()
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    targeted = sensor.asset_selection.resolve(defs.resolve_asset_graph())
    assert {key.to_user_string() for key in targeted} == DERIVED
