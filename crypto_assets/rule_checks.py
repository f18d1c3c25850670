"""Blocking asset checks built from SQL rules (crypto_assets.warehouse.rule_checks), shared by
the features and labels domains."""

from collections.abc import Mapping

from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    asset_check,
)

from crypto_assets.automation.conditions import CHECK_AFTER_UPDATE
from crypto_assets.resources import WarehouseResource
from crypto_assets.warehouse.rule_checks import count_violations


def build_rule_check(
    asset: AssetKey, table: str, name: str, rules: Mapping[str, str], description: str, pool: str
) -> AssetChecksDefinition:
    """A blocking check that fails, naming the broken rules, when any row of `table` breaks one."""

    @asset_check(
        asset=asset,
        name=name,
        blocking=True,
        pool=pool,
        description=description,
        # in the same run as the asset the automation sensors rebuild: assets downstream wait
        # for this check to pass (all_deps_blocking_checks_passed), so it must run
        automation_condition=CHECK_AFTER_UPDATE,
    )
    def rule_check(warehouse: WarehouseResource) -> AssetCheckResult:
        with warehouse.open() as db:
            found = count_violations(db, table, rules)
        broken = found[found["violations"] > 0]
        return AssetCheckResult(
            passed=broken.empty,
            severity=AssetCheckSeverity.ERROR,
            description="every rule holds"
            if broken.empty
            else "broken: " + "; ".join(f"{r.rule} x{r.violations}" for r in broken.itertuples()),
            metadata={
                "rows": int(found["total_rows"].iloc[0]),
                "rules": MetadataValue.md(found[["rule", "violations"]].to_markdown(index=False)),
            },
        )

    return rule_check
