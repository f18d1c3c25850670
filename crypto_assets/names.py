"""Names several domains share: concurrency pools, asset groups, the dbt models.

Kept here so a module that needs a name does not import another domain's asset module for it.
"""

from crypto_assets.market import Timeframe

#: every step that writes the warehouse (DuckDB allows one writing process per file)
WAREHOUSE_POOL = "warehouse_writes"

INGESTION_GROUP = "ingestion"
TRANSFORM_GROUP = "transform"
FEATURES_GROUP = "features"
LABELS_GROUP = "labels"
MODELS_GROUP = "models"

#: dbt models of resampled bars by timeframe, finest first (dbt_project/models/resampled); which
#: exist depends on the base timeframe
RESAMPLED_MODELS = {"15m": "ohlc_15m", "1h": "ohlc_1h", "4h": "ohlc_4h", "1d": "ohlc_1d"}
#: dbt models of the recent windows (dbt_project/models/windows)
WINDOW_MODELS = ("ohlc_today", "ohlc_recent")


def resampled_models(base: Timeframe) -> dict[str, str]:
    """Timeframe -> dbt model of the resampled timeframes built for `base`, finest first: those
    coarser than it and a whole multiple of it (dbt_project/macros/timeframes.sql decides the same)."""
    built = {}
    for name, table in RESAMPLED_MODELS.items():
        seconds = Timeframe.parse(name).seconds
        if seconds > base.seconds and seconds % base.seconds == 0:
            built[name] = table
    return built
