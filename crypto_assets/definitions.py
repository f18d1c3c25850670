"""The code location: every asset, check, schedule and resource of crypto_assets."""

from __future__ import annotations

from dagster import Definitions

from crypto_assets.automation.alerts import build_alerts_sensor
from crypto_assets.automation.freshness import MODEL_FRESHNESS, follows_each_bar, with_freshness
from crypto_assets.automation.gap_repair import build_gap_repair_sensor
from crypto_assets.automation.retraining import build_label_growth_sensor, build_models_sensor
from crypto_assets.automation.schedules import build_raw_ohlc_schedule
from crypto_assets.automation.sensors import build_features_and_labels_sensor, build_signals_sensor
from crypto_assets.features.assets import build_features
from crypto_assets.features.checks import build_features_checks
from crypto_assets.ingestion.assets import build_raw_ohlc
from crypto_assets.ingestion.checks import build_raw_ohlc_checks
from crypto_assets.labels.assets import build_label_assets
from crypto_assets.labels.checks import build_label_checks
from crypto_assets.models.assets import build_model_assets, models_by_labels
from crypto_assets.models.signals import build_signals_asset
from crypto_assets.resources import build_resources
from crypto_assets.settings import load_settings
from crypto_assets.transform.assets import build_transform

settings = load_settings()
raw_ohlc = build_raw_ohlc(settings.start, settings.timeframe)
transform = build_transform(settings.timeframe, settings.warehouse_url)
features_and_labels = [build_features(settings.timeframe), *build_label_assets()]
models = build_model_assets()
signals = build_signals_asset()
every_bar = with_freshness(
    [raw_ohlc, *transform.assets, *features_and_labels, signals], follows_each_bar(settings.timeframe)
)

defs = Definitions(
    assets=[*every_bar, *with_freshness(models, MODEL_FRESHNESS)],
    asset_checks=[*build_raw_ohlc_checks(raw_ohlc), *build_features_checks(), *build_label_checks()],
    schedules=[build_raw_ohlc_schedule(raw_ohlc, settings.timeframe)],
    sensors=[
        *transform.sensors,
        build_features_and_labels_sensor(features_and_labels),
        build_signals_sensor(signals),
        build_models_sensor(models),
        build_label_growth_sensor(models_by_labels(), growth=settings.retrain_label_growth),
        build_alerts_sensor([model.key for model in models]),
        build_gap_repair_sensor(),
    ],
    resources={**build_resources(settings), **transform.resources},
)
