"""strategy_dca_labels, strategy_swing_labels, strategy_channel_labels: triple-barrier labels of the
base-timeframe bars, one asset per strategy, parameters as run config."""

from dataclasses import asdict
from typing import NamedTuple

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from crypto_assets.automation.conditions import REBUILD_ON_UPSTREAM_UPDATE
from crypto_assets.labels.store import ensure_label_table, label_table, rewrite_labels
from crypto_assets.labels.strategies import ChannelParams, DcaParams, SwingParams, label_bars
from crypto_assets.market import Timeframe
from crypto_assets.names import LABELS_GROUP, WAREHOUSE_POOL
from crypto_assets.prerequisites import require_tables
from crypto_assets.resources import WarehouseResource
from crypto_assets.run_config import config_class, settings_from
from crypto_assets.warehouse.candles import read_bars

COMMON_RULES = (
    "Triple barrier on each bar's high and low from the bar after the entry (entry at the entry "
    "bar's close): the first bar reaching take profit or stop loss ends the trade, else it times out "
    "at the close of the last bar inside the time limit. A bar that reaches both barriers counts as "
    "a stop loss (the order inside a bar is unknown). The time limit is measured in time (a gap in "
    "the bars shortens a trade in bars, never in time). Entries whose time limit is after the "
    "newest bar are open and not labelled yet; a later run labels them. Each run rewrites the "
    "strategy's labels for the base timeframe in one transaction (keys: strategy, exchange, symbol, "
    "timeframe, entry_ts); label = 1 for take_profit. Rows: entry/take-profit/stop-loss prices, "
    "time limit, exit ts, outcome, bars to exit, realized return. Parameters (and their defaults) "
    "are the asset's run config."
)


class Strategy(NamedTuple):
    params: type  # the parameter dataclass (labels.strategies): defaults and docs
    rule: str  # the entry rule and barriers, in words


RULES = {
    "dca": Strategy(
        DcaParams,
        "DCA (buy the dip): an entry where close has fallen at least drop_pct below the highest high "
        "of the last lookback_bars bars; take profit take_profit_pct above, stop loss stop_loss_pct "
        "below the entry, time limit horizon_bars.",
    ),
    "swing": Strategy(
        SwingParams,
        "Swing (breakout): an entry where close breaks above the highest high of the previous "
        "lookback_bars bars with volume above the median of the previous volume_lookback_bars bars; "
        "take profit take_profit_pct above, stop loss stop_loss_pct below the entry, time limit "
        "horizon_bars.",
    ),
    "channel": Strategy(
        ChannelParams,
        "Channel (range): an entry where close sits in the bottom band_fraction of the lookback_bars "
        "channel (highest high, lowest low) while ADX(adx_period) < max_adx (ranging); take profit at "
        "the top band (channel high - band_fraction of its width), stop loss stop_buffer_pct below "
        "the channel low, time limit horizon_bars.",
    ),
}


def build_label_asset(strategy: str, base: Timeframe) -> AssetsDefinition:
    """The labels of `strategy`'s entries on the `base` timeframe's candles."""
    params_class, rule = RULES[strategy]
    config_type = config_class(params_class.__name__.replace("Params", "Config"), params_class)

    @asset(
        name=label_table(strategy),
        group_name=LABELS_GROUP,
        deps=[AssetKey("raw_ohlc")],  # labels read the base candles only
        pool=WAREHOUSE_POOL,
        kinds={"python", "sql"},
        automation_condition=REBUILD_ON_UPSTREAM_UPDATE,
        description=f"{rule} {COMMON_RULES}",
    )
    def labels(
        context: AssetExecutionContext,
        config: config_type,
        warehouse: WarehouseResource,
    ) -> MaterializeResult:
        params = settings_from(config, params_class)
        with warehouse.open() as db:
            require_tables(db, "raw_ohlc")
            with db.begin() as connection:
                ensure_label_table(connection, strategy)
                bars = read_bars(connection, base.name)
                rows = label_bars(strategy, bars, params, base.seconds)
                rewrite_labels(connection, strategy, base.name, rows)
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


def build_label_assets(base: Timeframe) -> list[AssetsDefinition]:
    return [build_label_asset(strategy, base) for strategy in RULES]
