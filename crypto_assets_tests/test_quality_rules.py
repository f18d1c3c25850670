"""Blocking rule checks on features and labels: pass on what the pipeline writes, catch corruption."""

from __future__ import annotations

from dagster import materialize

from crypto_assets.features.assets import build_features
from crypto_assets.features.checks import FEATURE_RULES, build_features_checks
from crypto_assets.labels.assets import build_label_assets
from crypto_assets.labels.checks import LABEL_RULES, build_label_checks
from crypto_assets.market import Timeframe
from crypto_assets.resources import MarketResource, WarehouseResource
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.rule_checks import count_violations
from crypto_assets_tests.helpers import materialize_raw


def violations(warehouse: Warehouse, table: str, rules: dict) -> dict[str, int]:
    found = count_violations(warehouse, table, rules)
    return {r.rule: r.violations for r in found.itertuples() if r.violations}


def test_rules_hold_on_what_the_pipeline_writes_and_catch_corruption(
    warehouse_url: str, warehouse: Warehouse
):
    assert materialize_raw(
        warehouse_url, first_day="2025-03-01", last_day="2025-03-12", symbols="BTC-USD"
    ).success
    derived = [build_features(Timeframe.parse("15m")), *build_label_assets(Timeframe.parse("15m"))]
    result = materialize(
        [*derived, *build_features_checks(), *build_label_checks()],
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "market": MarketResource(symbols="BTC-USD"),
        },
    )
    assert result.success
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()
    }
    assert checks == {
        ("features", "indicators_valid"): True,
        ("strategy_dca_labels", "outcomes_consistent"): True,
        ("strategy_swing_labels", "outcomes_consistent"): True,
        ("strategy_channel_labels", "outcomes_consistent"): True,
    }

    with warehouse.begin() as connection:  # corruption a buggy writer could leave behind
        connection.exec_driver_sql(
            "UPDATE features SET rsi_14 = 150 WHERE ts = (SELECT max(ts) FROM features WHERE NOT is_warmup)"
        )
        connection.exec_driver_sql(
            "UPDATE strategy_dca_labels SET label = 1 - label "
            "WHERE entry_ts = (SELECT min(entry_ts) FROM strategy_dca_labels)"
        )
    assert violations(warehouse, "features", FEATURE_RULES) == {"rsi outside 0..100": 1}
    assert violations(warehouse, "strategy_dca_labels", LABEL_RULES) == {"label disagrees with outcome": 1}
