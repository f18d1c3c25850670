"""How old each asset may get before Dagster marks it late (WARN) or stale (FAIL).

The daemon evaluates these policies every 30 s and records each change of state; the alerts
sensor turns the changes into messages and `crypto-assets status` shows the current state.
Policies are applied once here, over the whole graph, so every asset has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from dagster import AssetsDefinition, AssetSpec, FreshnessPolicy, map_asset_specs

from crypto_assets.market import Timeframe

#: the time a load and the rebuilds after it may take on top of the bars themselves
PIPELINE_SLACK = timedelta(minutes=15)
#: models retrain weekly (and earlier when their labels grow): within a week and a day is fresh
RETRAIN_EVERY = timedelta(days=7)
MODEL_FRESHNESS = FreshnessPolicy.time_window(
    warn_window=RETRAIN_EVERY + timedelta(hours=6), fail_window=RETRAIN_EVERY + timedelta(days=1)
)


#: a load runs a minute after each close; a bar may be this late before its symbol counts as stale
LOAD_SLACK = timedelta(minutes=5)


def raw_ohlc_stale_after(timeframe: Timeframe) -> timedelta:
    """How old the newest closed bar of raw_ohlc (as a whole, or of one symbol) may get."""
    return 4 * timeframe.delta + LOAD_SLACK


def raw_ohlc_freshness(timeframe: Timeframe) -> FreshnessPolicy:
    """Late after two bars without a load, stale after four."""
    return FreshnessPolicy.time_window(
        warn_window=2 * timeframe.delta + LOAD_SLACK, fail_window=raw_ohlc_stale_after(timeframe)
    )


def follows_each_bar(timeframe: Timeframe) -> FreshnessPolicy:
    """For assets rebuilt after every new base bar: late after two bars, stale after four."""
    return FreshnessPolicy.time_window(
        warn_window=2 * timeframe.delta + PIPELINE_SLACK, fail_window=4 * timeframe.delta + PIPELINE_SLACK
    )


def with_freshness(assets: Sequence[AssetsDefinition], policy: FreshnessPolicy) -> list[AssetsDefinition]:
    """`assets` with `policy` on every asset that has no freshness policy of its own."""

    def apply(spec: AssetSpec) -> AssetSpec:
        return spec if spec.freshness_policy else spec.replace_attributes(freshness_policy=policy)

    return list(map_asset_specs(apply, assets))
