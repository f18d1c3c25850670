"""The ingestion domain's definitions: raw_ohlc, its checks, its schedule, gap repair, its source."""

from dagster import Definitions

from crypto_assets.automation.gap_repair import build_gap_repair_sensor
from crypto_assets.automation.schedules import build_raw_ohlc_schedule
from crypto_assets.ingestion.assets import build_raw_ohlc
from crypto_assets.ingestion.checks import build_raw_ohlc_checks
from crypto_assets.resources import source_resource
from crypto_assets.settings import Settings


def ingestion_defs(settings: Settings) -> Definitions:
    raw_ohlc = build_raw_ohlc(settings.start, settings.timeframe)
    return Definitions(
        assets=[raw_ohlc],
        asset_checks=build_raw_ohlc_checks(raw_ohlc, settings.timeframe),
        schedules=[build_raw_ohlc_schedule(raw_ohlc, settings.timeframe)],
        sensors=[build_gap_repair_sensor(settings.timeframe)],
        resources={"source": source_resource(settings)},
    )
