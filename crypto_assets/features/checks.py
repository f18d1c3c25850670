"""Checks of the stored features: values in their mathematical ranges, no holes after warm-up."""

from dagster import AssetChecksDefinition, AssetKey

from crypto_assets.features.store import FEATURES_TABLE
from crypto_assets.names import WAREHOUSE_POOL
from crypto_assets.rule_checks import build_rule_check

FEATURE_RULES = {
    "rsi outside 0..100": "rsi_14 < 0 OR rsi_14 > 100",
    "donchian position outside 0..1": "donchian_pos_48 < -1e-6 OR donchian_pos_48 > 1 + 1e-6",
    "indicator missing after warm-up": "NOT is_warmup AND (rsi_14 IS NULL OR macd IS NULL OR atr_14 IS NULL)",
    "negative ATR or bandwidth": "atr_14 < 0 OR bb_bandwidth < 0",
    "drawdown above the rolling high": "drawdown_48 > 1e-6",
    "hour or weekday out of range": "hour_of_day NOT BETWEEN 0 AND 23 OR day_of_week NOT BETWEEN 0 AND 6",
}


def build_features_checks() -> list[AssetChecksDefinition]:
    return [
        build_rule_check(
            AssetKey("features"),
            FEATURES_TABLE,
            "indicators_valid",
            FEATURE_RULES,
            "Indicator values stay in their ranges and none is missing once warm-up is over.",
            WAREHOUSE_POOL,
        )
    ]
