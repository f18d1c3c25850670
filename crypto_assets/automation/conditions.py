"""The declarative automation every derived asset shares."""

from dagster import AutomationCondition

# eager() without `~any_deps_missing`: raw_ohlc has a daily partition for every day since
# CRYPTO_ASSETS_START and a deployment rarely loads them all, so "any partition missing" would
# block the derived assets forever. An asset rebuilds after any upstream update (or when it is
# missing itself), once nothing upstream or itself is still running, and only while every
# blocking check of its upstream assets passes: candles that failed raw_ohlc_expectations in one
# run hold the dbt models, features, labels and signals until a later run passes the check.
REBUILD_ON_UPSTREAM_UPDATE = (
    AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())
    & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("rebuild when upstream updates and its blocking checks pass")

# For a blocking check of an asset the automation rebuilds: requested with the asset (or after
# it updates some other way), so the check's result exists for the assets that wait on it.
CHECK_AFTER_UPDATE = AutomationCondition.eager().with_label("check after its asset updates")


def rebuild_once_a_check_passes(checks: list) -> AutomationCondition:
    """REBUILD_ON_UPSTREAM_UPDATE, but only while at least one of `checks` (check keys of assets
    upstream) passed on its asset's newest materialization. strategy_signals waits for a model's
    `has_champion` check: a model that skipped or was refused still materializes, and signals with
    no champion to score with would fail on every new bar."""
    from dagster import AssetSelection

    models = AssetSelection.assets(*{key.asset_key for key in checks})
    passed = AutomationCondition.any_checks_match(AutomationCondition.check_passed()).allow(
        AssetSelection.checks(*checks)
    )
    return (REBUILD_ON_UPSTREAM_UPDATE & AutomationCondition.any_deps_match(passed).allow(models)).with_label(
        "rebuild when upstream updates, once a model has a champion"
    )
