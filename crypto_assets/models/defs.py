"""The models domain's definitions: the three models, the signals they score, when each runs, and
the MLflow store they are tracked in."""

from dagster import Definitions

from crypto_assets.automation.freshness import MODEL_FRESHNESS, follows_each_bar, with_freshness
from crypto_assets.automation.retraining import build_label_growth_sensor, build_models_sensor
from crypto_assets.automation.sensors import build_signals_sensor
from crypto_assets.models.assets import build_model_assets, models_by_labels
from crypto_assets.models.signals import build_signals_asset
from crypto_assets.resources import mlflow_resource
from crypto_assets.settings import Settings


def models_defs(settings: Settings) -> Definitions:
    models = build_model_assets(settings.timeframe)
    signals = build_signals_asset(settings.timeframe)
    return Definitions(
        assets=[
            *with_freshness(models, MODEL_FRESHNESS),  # retrained weekly
            *with_freshness([signals], follows_each_bar(settings.timeframe)),  # scored every bar
        ],
        sensors=[
            build_signals_sensor(signals),
            build_models_sensor(models),
            build_label_growth_sensor(models_by_labels(), growth=settings.retrain_label_growth),
        ],
        resources={"mlflow": mlflow_resource(settings)},
    )
