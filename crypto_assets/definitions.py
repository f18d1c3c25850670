"""The code location Dagster loads (`dagster dev -m crypto_assets.definitions`): built from the
environment's settings by crypto_assets.code_location.build_defs."""

from crypto_assets.code_location import build_defs
from crypto_assets.settings import load_settings

defs = build_defs(load_settings())
