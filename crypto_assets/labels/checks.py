"""Checks of the stored labels: every row is a coherent long trade with a consistent outcome."""

from dagster import AssetChecksDefinition, AssetKey

from crypto_assets.labels.assets import RULES
from crypto_assets.labels.store import label_table
from crypto_assets.names import WAREHOUSE_POOL
from crypto_assets.rule_checks import build_rule_check

LABEL_RULES = {
    "unknown outcome": "outcome NOT IN ('take_profit', 'stop_loss', 'timeout')",
    "label disagrees with outcome": "label <> CASE WHEN outcome = 'take_profit' THEN 1 ELSE 0 END",
    "barriers not around the entry": (
        "NOT (take_profit_price > entry_price AND entry_price > stop_loss_price)"
    ),
    "exit outside entry..time limit": "exit_ts < entry_ts OR exit_ts > time_limit_ts",
    "negative bars to exit": "bars_to_exit < 0",
    "return sign disagrees with outcome": (
        "(outcome = 'take_profit' AND realized_return <= 0) "
        "OR (outcome = 'stop_loss' AND realized_return >= 0)"
    ),
}


def build_label_checks() -> list[AssetChecksDefinition]:
    return [
        build_rule_check(
            AssetKey(label_table(strategy)),
            label_table(strategy),
            "outcomes_consistent",
            LABEL_RULES,
            "Outcome, label, barriers, exit time and return of every row agree with each other.",
            WAREHOUSE_POOL,
        )
        for strategy in RULES
    ]
