"""The features asset: technical indicators per (exchange, symbol, timeframe, ts)."""

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, MaterializeResult, asset
from pydantic import Field

from crypto_assets.automation.conditions import REBUILD_ON_UPSTREAM_UPDATE
from crypto_assets.features.indicators import OVERLAP_BARS, WARMUP_BARS
from crypto_assets.features.refresh import refresh_features
from crypto_assets.market import Timeframe
from crypto_assets.names import FEATURES_GROUP, WAREHOUSE_POOL, resampled_models
from crypto_assets.prerequisites import require_tables
from crypto_assets.resources import WarehouseResource


class FeaturesConfig(Config):
    full_refresh: bool = Field(
        default=False,
        description="Recompute every bar of every series instead of only the new bars plus the overlap.",
    )


def build_features(base: Timeframe) -> AssetsDefinition:
    """The features asset, downstream of raw_ohlc and of the dbt models coarser than `base`."""
    resampled = list(resampled_models(base).values())

    @asset(
        name="features",
        group_name=FEATURES_GROUP,
        deps=[AssetKey("raw_ohlc"), *(AssetKey(table) for table in resampled)],
        pool=WAREHOUSE_POOL,
        kinds={"python", "sql"},
        automation_condition=REBUILD_ON_UPSTREAM_UPDATE,
        description=(
            "Technical indicators per (exchange, symbol, timeframe, ts), one row per bar of the base "
            "timeframe (raw_ohlc) and of each resampled dbt model present (complete and closed "
            "buckets only: is_complete AND is_closed): returns over 1/4/16/48 bars, RSI 14, MACD "
            "12/26/9, Bollinger %B and bandwidth (20, 2), ATR 14 (absolute and relative), ADX 14, "
            "realized volatility, volume z-score, volume / rolling median and the volume-anomaly "
            "flag (volume >= 3x its 48-bar median), distance to SMA 48 and EMA 20, Donchian 48 "
            "position and width, drawdown from the 48-bar high, hour of day, day of week. A feature "
            "at bar t uses bars <= t only. Floats are stored as REAL (float32). "
            f"is_warmup marks the first {WARMUP_BARS} bars of each series; values an indicator "
            "cannot compute yet are NULL. Incremental by default: each series is recomputed from "
            f"{OVERLAP_BARS} stored bars before its newest one and only newer bars are written, "
            "which equals a full recompute to float32 precision; `full_refresh` rebuilds all. "
            "Corrected old bars are only picked up by a full recompute."
        ),
    )
    def features(
        context: AssetExecutionContext,
        config: FeaturesConfig,
        warehouse: WarehouseResource,
    ) -> MaterializeResult:
        with warehouse.open() as db:
            require_tables(db, "raw_ohlc")
            report = refresh_features(db, base, full=config.full_refresh)
        mode = "full" if report.full else "incremental"
        context.log.info(f"features ({mode}): read {report.read}, wrote {report.written}")
        return MaterializeResult(
            metadata={
                "mode": mode,
                "rows_written": sum(report.written.values()),
                "rows_written_by_timeframe": {k: int(v) for k, v in report.written.items()},
                "dagster/row_count": report.stored,
            }
        )

    return features
