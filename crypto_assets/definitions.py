"""The code location: every asset, check, schedule and resource of crypto_assets."""

from __future__ import annotations

from dagster import Definitions

from crypto_assets.ingestion.assets import build_raw_ohlc
from crypto_assets.resources import build_resources
from crypto_assets.settings import load_settings

settings = load_settings()
raw_ohlc = build_raw_ohlc(settings.start)

defs = Definitions(
    assets=[raw_ohlc],
    resources=build_resources(settings),
)
