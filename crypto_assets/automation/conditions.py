"""The declarative automation every derived asset shares."""

from dagster import AssetCheckKey, AutomationCondition

# eager() without `~any_deps_missing`: raw_ohlc has a daily partition for every day since
# CRYPTO_ASSETS_START and a deployment rarely loads them all, so "any partition missing" would
# block the derived assets forever. An asset rebuilds after any upstream update (or when it is
# missing itself), once nothing upstream or itself is still running, and only while every
# blocking check of its upstream assets passes: candles that failed expectation_suite in one
# run hold the dbt models, features, labels and signals until a later run passes the check.
_EAGER_DESPITE_MISSING = AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())
REBUILD_ON_UPSTREAM_UPDATE = (
    _EAGER_DESPITE_MISSING & AutomationCondition.all_deps_blocking_checks_passed()
).with_label("rebuild when upstream updates and its blocking checks pass")

# For a blocking check of an asset the automation rebuilds: requested with the asset (or after
# it updates some other way), so the check's result exists for the assets that wait on it.
CHECK_AFTER_UPDATE = AutomationCondition.eager().with_label("check after its asset updates")


def rebuild_once_a_check_passes(checks: list[AssetCheckKey]) -> AutomationCondition:
    """REBUILD_ON_UPSTREAM_UPDATE, but only while at least one of `checks` (blocking checks of
    assets upstream, the gate) passed on its asset's newest materialization; the other blocking
    checks upstream must pass as usual, the gate's do not all have to. strategy_signals waits for a
    model's `has_champion` check: a model that skipped or was refused still materializes, and
    signals with no champion to score with would fail on every new bar.

    The gate must be blocking checks: in Dagster 1.13.27 `any_checks_match(...).allow(selection)`
    intersects the asset node's own set of check keys in place unless `blocking_only=True`: after one
    evaluation, the resolved asset graph had forgotten every other check of the models."""
    from dagster import AssetSelection

    gate = AssetSelection.checks(*checks)
    upstream = AssetSelection.assets(*{key.asset_key for key in checks})
    other_checks_pass = AutomationCondition.all_deps_match(
        AutomationCondition.all_checks_match(
            AutomationCondition.check_passed() | AutomationCondition.will_be_requested(), blocking_only=True
        ).ignore(gate)
    ).with_label("all_deps_blocking_checks_passed, but the gate")
    gate_passed = (
        AutomationCondition.any_deps_match(
            AutomationCondition.any_checks_match(
                AutomationCondition.check_passed(), blocking_only=True
            ).allow(gate)
        )
        .allow(upstream)
        .with_label("a gate check passed")
    )
    return (_EAGER_DESPITE_MISSING & other_checks_pass & gate_passed).with_label(
        "rebuild when upstream updates, once a model has a champion"
    )
