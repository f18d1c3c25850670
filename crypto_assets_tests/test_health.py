"""`crypto-assets status` reads the instance: healthy, stale and failing deployments.

Real runs of a small code location are recorded in a test instance; the freshness verdict is
taken at chosen times, so "stale" needs no waiting.
"""

from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetMaterialization,
    Config,
    DagsterInstance,
    DailyPartitionsDefinition,
    Definitions,
    FreshnessPolicy,
    MaterializeResult,
    asset,
    instance_for_test,
    materialize,
)

from crypto_assets.cli.health import LATE, NEVER, STALE, read_health
from crypto_assets.quiet import quietly


class PricesConfig(Config):
    fail_with: str = ""
    valid: bool = True


@asset(
    freshness_policy=FreshnessPolicy.time_window(
        warn_window=timedelta(minutes=30), fail_window=timedelta(hours=1)
    ),
    check_specs=[
        AssetCheckSpec("prices_sane", asset="prices", blocking=True, description="Highs are above lows."),
        AssetCheckSpec("prices_review", asset="prices", description="Moves worth a look."),
    ],
)
def prices(config: PricesConfig):
    if config.fail_with:
        raise RuntimeError(config.fail_with)
    yield MaterializeResult()
    yield AssetCheckResult(
        check_name="prices_sane", passed=config.valid, severity=AssetCheckSeverity.ERROR,
        description=None if config.valid else "3 rows with high < low",
    )  # fmt: skip
    yield AssetCheckResult(check_name="prices_review", passed=False, severity=AssetCheckSeverity.WARN)


@asset(deps=[prices], freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(days=8)))
def dca_model() -> None:
    """Its materializations are reported with the model assets' metadata below."""


GRAPH = Definitions(assets=[prices, dca_model]).resolve_asset_graph()
MODELS = [AssetKey("dca_model")]


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def load(instance: DagsterInstance, **config) -> bool:
    return materialize(
        [prices], instance=instance, run_config={"ops": {"prices": {"config": config}}}, raise_on_error=False
    ).success


def train(instance: DagsterInstance, **metadata) -> None:
    instance.report_runless_asset_event(AssetMaterialization("dca_model", metadata=metadata))


def health_at(instance: DagsterInstance, minutes_from_now: float = 0):
    return read_health(instance, GRAPH, MODELS, datetime.now(UTC) + timedelta(minutes=minutes_from_now))


def test_a_healthy_deployment_has_no_problem_and_names_the_champion(instance: DagsterInstance):
    assert load(instance)
    train(instance, promotion="promoted", model_version=2, promotion_reason="edge", oos_auc=0.61)
    train(
        instance,
        promotion="refused",
        model_version=3,
        champion_version=2,
        promotion_reason="worse",
        oos_auc=0.58,
    )
    health = health_at(instance)
    assert health.problems() == []
    assert {a["asset"]: a["state"] for a in health.assets} == {"prices": "fresh", "dca_model": "fresh"}
    (model,) = health.models
    assert model["champion_version"] == 2 and model["oos_auc"] == 0.61 and model["age"] == "0m"
    assert model["last_training"] == "refused: worse"
    # a WARN check that fails is reported as a warning, not a problem
    assert health.warnings() == ["check prices:prices_review warns: Moves worth a look."]


def test_an_asset_is_late_then_stale_against_its_own_policy(instance: DagsterInstance):
    assert load(instance)
    train(instance, promotion="skipped", promotion_reason="800 labels < 1000")
    states = {a["asset"]: a["state"] for a in health_at(instance, 45).assets}
    assert states == {"prices": LATE, "dca_model": "fresh"}
    stale = health_at(instance, 61)
    assert {a["asset"]: a["state"] for a in stale.assets}["prices"] == STALE
    assert stale.problems() == ["prices stale"]
    assert "dca_model stale" in health_at(instance, 8 * 24 * 60 + 1).problems()


def test_a_failing_deployment_names_the_failed_run_and_check_until_they_recover(instance: DagsterInstance):
    assert {a["asset"]: a["state"] for a in health_at(instance).assets}["dca_model"] == NEVER
    assert not load(instance, fail_with="exchange answered 502 for BTC-USD")
    problems = health_at(instance).problems()
    assert any(
        p.startswith("run ")
        and p.endswith("of prices failed: RuntimeError: exchange answered 502 for BTC-USD")
        for p in problems
    ), problems
    assert not load(instance, valid=False)  # written, then the blocking check fails
    problems = health_at(instance).problems()
    assert "check prices:prices_sane failed: 3 rows with high < low; Highs are above lows." in problems
    assert not any(p.startswith("run ") and "502" in p for p in problems), "prices was written since"
    assert load(instance)
    train(instance, promotion="skipped", promotion_reason="800 labels < 1000")
    assert health_at(instance).problems() == []


DAYS = DailyPartitionsDefinition(start_date="2025-01-01")


@quietly(
    asset,
    partitions_def=DAYS,
    check_specs=[quietly(AssetCheckSpec, "daily_sane", asset="daily_prices", partitions_def=DAYS)],
)
def daily_prices(context, config: PricesConfig):
    """A partitioned asset whose check is evaluated per partition."""
    if config.fail_with:
        raise RuntimeError(config.fail_with)
    yield MaterializeResult()
    yield AssetCheckResult(
        passed=config.valid, description=None if config.valid else "2 rows with high < low"
    )


def test_a_partitioned_check_fails_while_an_older_partition_fails(instance: DagsterInstance):
    """As the alerts sensor judges it: a pass on today's partition does not hide yesterday's failure."""
    graph = Definitions(assets=[daily_prices]).resolve_asset_graph()

    def check_on(day: str, valid: bool):
        run_config = {"ops": {"daily_prices": {"config": {"valid": valid}}}}
        assert materialize(
            [daily_prices], instance=instance, partition_key=day, run_config=run_config
        ).success
        (row,) = read_health(instance, graph, [], datetime.now(UTC)).checks
        return row

    assert check_on("2025-03-03", valid=False)["status"] == "failed"
    today = check_on("2025-03-04", valid=True)
    assert (today["status"], today["problem"]) == ("failed", True)
    assert today["description"] == "failing on 2025-03-03: 2 rows with high < low"
    assert check_on("2025-03-03", valid=True)["status"] == "passed"


def test_a_failed_backfill_of_old_days_stays_a_problem_until_those_days_are_written(
    instance: DagsterInstance,
):
    """A load of today does not hide a failed load of older days: the failure is resolved only
    when every partition the failed run was for has been written since."""
    graph = Definitions(assets=[daily_prices]).resolve_asset_graph()

    def run(first: str, last: str, fail: bool = False) -> bool:
        config = {"ops": {"daily_prices": {"config": {"fail_with": "exchange down" if fail else ""}}}}
        return materialize(
            [daily_prices], instance=instance, run_config=config, raise_on_error=False,
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        ).success  # fmt: skip

    def failed_run_problem() -> bool:
        (row,) = read_health(instance, graph, [], datetime.now(UTC)).runs
        return row["problem"]

    assert not run("2025-03-01", "2025-03-02", fail=True)
    assert failed_run_problem()
    assert run("2025-03-04", "2025-03-04")  # today's load
    assert failed_run_problem(), "the old days are still missing"
    assert run("2025-03-01", "2025-03-01")
    assert failed_run_problem(), "one of the two days is still missing"
    assert run("2025-03-02", "2025-03-02")
    assert not failed_run_problem()
