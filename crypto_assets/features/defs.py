"""The features and labels domains' definitions, and the sensor that keeps both following the
candles."""

from dagster import Definitions

from crypto_assets.automation.freshness import follows_each_bar, with_freshness
from crypto_assets.automation.sensors import build_features_and_labels_sensor
from crypto_assets.features.assets import build_features
from crypto_assets.features.checks import build_features_checks
from crypto_assets.labels.assets import build_label_assets
from crypto_assets.labels.checks import build_label_checks
from crypto_assets.settings import Settings


def features_and_labels_defs(settings: Settings) -> Definitions:
    assets = [build_features(settings.timeframe), *build_label_assets(settings.timeframe)]
    return Definitions(
        assets=with_freshness(assets, follows_each_bar(settings.timeframe)),
        asset_checks=[*build_features_checks(), *build_label_checks()],
        sensors=[build_features_and_labels_sensor(assets)],
    )
