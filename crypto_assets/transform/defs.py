"""The transform domain's definitions: the dbt models, their automation sensor and dbt resource."""

from dagster import Definitions

from crypto_assets.automation.freshness import follows_each_bar, with_freshness
from crypto_assets.settings import Settings
from crypto_assets.transform.assets import build_transform
from crypto_assets.transform.project import DbtSetup


def transform_defs(settings: Settings) -> Definitions:
    transform = build_transform(DbtSetup(settings.timeframe), settings.warehouse_url)
    return Definitions(
        assets=with_freshness(transform.assets, follows_each_bar(settings.timeframe)),
        sensors=transform.sensors,
        resources=transform.resources,
    )
