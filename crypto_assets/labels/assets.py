"""strategy_dca_labels, strategy_swing_labels, strategy_channel_labels: triple-barrier labels of the
base-timeframe bars, one asset per strategy, parameters as run config."""

from dataclasses import asdict, fields

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from crypto_assets.automation.conditions import REBUILD_ON_UPSTREAM_UPDATE
from crypto_assets.labels.store import ensure_label_table, label_table, read_base_bars, rewrite_labels
from crypto_assets.labels.strategies import ChannelParams, DcaParams, SwingParams, label_bars
from crypto_assets.names import LABELS_GROUP, WAREHOUSE_POOL
from crypto_assets.resources import MarketResource, WarehouseResource

_HORIZON = "Time limit in base bars, measured in time: entry ts + horizon_bars x timeframe."
COMMON_RULES = (
    "Triple barrier on each bar's high and low from the bar after the entry (entry at the entry "
    "bar's close): the first bar reaching take profit or stop loss ends the trade, else it times out "
    "at the close of the last bar inside the time limit. A bar that reaches both barriers counts as "
    "a stop loss (the order inside a bar is unknown). The time limit is measured in time (a gap in "
    "the bars shortens a trade in bars, never in time). Entries whose time limit is after the "
    "newest bar are open and not labelled yet; a later run labels them. Each run rewrites the "
    "strategy's labels for the base timeframe in one transaction (keys: strategy, exchange, symbol, "
    "timeframe, entry_ts); label = 1 for take_profit. Rows: entry/take-profit/stop-loss prices, "
    "time limit, exit ts, outcome, bars to exit, realized return."
)


class DcaConfig(Config):
    lookback_bars: int = Field(DcaParams.lookback_bars, description="Bars of the rolling high.")
    drop_pct: float = Field(DcaParams.drop_pct, description="Entry when close is this % below the high.")
    take_profit_pct: float = Field(DcaParams.take_profit_pct, description="Take profit, % above entry.")
    stop_loss_pct: float = Field(DcaParams.stop_loss_pct, description="Stop loss, % below entry.")
    horizon_bars: int = Field(DcaParams.horizon_bars, description=_HORIZON)


class SwingConfig(Config):
    lookback_bars: int = Field(SwingParams.lookback_bars, description="Bars of the prior high broken.")
    volume_lookback_bars: int = Field(
        SwingParams.volume_lookback_bars, description="Bars of the volume median."
    )
    take_profit_pct: float = Field(SwingParams.take_profit_pct, description="Take profit, % above entry.")
    stop_loss_pct: float = Field(SwingParams.stop_loss_pct, description="Stop loss, % below entry.")
    horizon_bars: int = Field(SwingParams.horizon_bars, description=_HORIZON)


class ChannelConfig(Config):
    lookback_bars: int = Field(ChannelParams.lookback_bars, description="Bars of the channel.")
    band_fraction: float = Field(ChannelParams.band_fraction, description="Height of the bottom/top bands.")
    adx_period: int = Field(ChannelParams.adx_period, description="ADX period (trend strength).")
    max_adx: float = Field(ChannelParams.max_adx, description="Ranging when ADX is below this.")
    stop_buffer_pct: float = Field(ChannelParams.stop_buffer_pct, description="Stop, % below channel low.")
    horizon_bars: int = Field(ChannelParams.horizon_bars, description=_HORIZON)


RULES = {
    "dca": (
        DcaConfig,
        DcaParams,
        "DCA (buy the dip): an entry where close has fallen >= drop_pct (5%) from the highest high of the "
        "last lookback_bars (96) bars; take profit +3%, stop loss -5%, time limit 192 bars.",
    ),
    "swing": (
        SwingConfig,
        SwingParams,
        "Swing (breakout): an entry where close breaks above the highest high of the previous "
        "lookback_bars (48) bars with volume above the median of the previous 48 bars; take profit "
        "+4%, stop loss -2%, time limit 96 bars.",
    ),
    "channel": (
        ChannelConfig,
        ChannelParams,
        "Channel (range): an entry where close sits in the bottom band_fraction (20%) of the "
        "lookback_bars (96) channel (highest high, lowest low) while ADX 14 < 20 (ranging); take "
        "profit at the top band (channel high - 20% of its width), stop 0.5% below the channel "
        "low, time limit 96 bars.",
    ),
}


def build_label_asset(strategy: str) -> AssetsDefinition:
    config_class, params_class, rule = RULES[strategy]

    @asset(
        name=label_table(strategy),
        group_name=LABELS_GROUP,
        deps=[AssetKey("raw_ohlc"), AssetKey("features")],
        pool=WAREHOUSE_POOL,
        kinds={"python", "sql"},
        automation_condition=REBUILD_ON_UPSTREAM_UPDATE,
        description=f"{rule} {COMMON_RULES}",
    )
    def labels(
        context: AssetExecutionContext,
        config: config_class,
        warehouse: WarehouseResource,
        market: MarketResource,
    ) -> MaterializeResult:
        params = params_class(**{f.name: getattr(config, f.name) for f in fields(params_class)})
        base = market.base_timeframe
        db = warehouse.open()
        try:
            with db.begin() as connection:
                ensure_label_table(connection, strategy)
                bars = read_base_bars(connection, base.name)
                rows = label_bars(strategy, bars, params, base.seconds)
                rewrite_labels(connection, strategy, base.name, rows)
        finally:
            db.dispose()
        counts = rows["outcome"].value_counts().to_dict() if len(rows) else {}
        context.log.info(f"{strategy}: {len(rows)} closed labels from {len(bars)} bars ({counts})")
        return MaterializeResult(
            metadata={
                "bars_read": len(bars),
                "outcomes": {k: int(v) for k, v in counts.items()},
                "positive_rate": float(rows["label"].mean()) if len(rows) else 0.0,
                # the entry rule and barriers these labels follow; the strategy's model records them
                "params": MetadataValue.json(asdict(params)),
                "dagster/row_count": len(rows),
            }
        )

    return labels


def build_label_assets() -> list[AssetsDefinition]:
    return [build_label_asset(strategy) for strategy in RULES]
