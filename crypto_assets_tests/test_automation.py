"""Features and labels follow new candles on their own, and stop following bad ones.

The schedule's run writes raw_ohlc and runs its checks; the automation sensors then rebuild
what is downstream, but only while every blocking check upstream passes.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DefaultSensorStatus,
    Definitions,
    evaluate_automation_conditions,
)

from crypto_assets.code_location import build_defs
from crypto_assets.market import Timeframe
from crypto_assets.settings import load_settings
from crypto_assets.warehouse import Warehouse
from crypto_assets_tests.helpers import recorded_run

BASE = Timeframe.parse("15m")
LABELS = {"strategy_dca_labels", "strategy_swing_labels", "strategy_channel_labels"}
DERIVED = {"features", *LABELS}
MODELS = {"ohlc_1h", "ohlc_4h", "ohlc_1d", "ohlc_today", "ohlc_recent"}
DAY = "2025-03-04"
MODEL_CHECKS = {
    "oos_auc_above_floor", "no_empty_fold", "class_balance", "beats_base_rate_log_loss", "has_champion"
}  # fmt: skip


def code_location(tmp_path: Path) -> tuple[Definitions, object]:
    """The real code location (crypto_assets.code_location.build_defs) as its settings make it:
    partitions from 2025, two symbols, a DuckDB warehouse and stores under `tmp_path`."""
    settings = load_settings(
        {
            "CRYPTO_ASSETS_START": "2025-01-01",
            "CRYPTO_ASSETS_SYMBOLS": "BTC-USD,ETH-USD",
            "CRYPTO_ASSETS_HOME": str(tmp_path / "home"),
        }
    )
    defs = build_defs(settings)
    return defs, defs.resolve_sensor_def("features_and_labels_automation")


class Deployment:
    """A code location, its instance and warehouse, and the automation's cursor between ticks."""

    def __init__(self, tmp_path: Path) -> None:
        self.defs, _ = code_location(tmp_path)
        self.instance = DagsterInstance.ephemeral()
        self.url = f"duckdb:///{tmp_path / 'home' / 'warehouse.duckdb'}"
        self.cursor = None

    def load(self) -> bool:
        """The schedule's run: its job (raw_ohlc and its checks) for one day."""
        job = self.defs.resolve_job_def("refresh_raw_ohlc")
        return job.execute_in_process(partition_key=DAY, instance=self.instance, raise_on_error=False).success

    def tick(self, at: datetime | None = None) -> set[str]:
        """One evaluation of every automation condition (at `at`, default now): the assets it requests."""
        result = evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.cursor, evaluation_time=at
        )
        self.cursor = result.cursor
        self.checks = {
            r.key.to_user_string()
            for r in result.results
            if r.true_subset.size and isinstance(r.key, AssetCheckKey)
        }
        return {
            r.key.to_user_string()
            for r in result.results
            if r.true_subset.size and isinstance(r.key, AssetKey)
        }

    def dbt_build_passes(self) -> None:
        """What a successful dbt build records: the models and their (blocking) dbt tests."""
        for node in self.defs.resolve_asset_graph().asset_nodes:
            if node.key.to_user_string() not in MODELS:
                continue
            self.instance.report_runless_asset_event(AssetMaterialization(node.key))
            for check in node.check_keys:
                self.instance.report_runless_asset_event(
                    AssetCheckEvaluation(
                        asset_key=check.asset_key, check_name=check.name, passed=True,
                        severity=AssetCheckSeverity.ERROR,
                    )
                )  # fmt: skip


def test_new_candles_request_models_then_features_and_labels_once(tmp_path: Path):
    deployment = Deployment(tmp_path)
    assert deployment.tick() == set()
    assert deployment.load()
    # labels read raw_ohlc only; features also read the dbt models and wait for their tests
    assert deployment.tick() == MODELS | LABELS
    # the blocking checks of the rebuilt assets run with them, so what is downstream can follow
    assert deployment.checks == {f"{name}:outcomes_consistent" for name in LABELS}
    assert deployment.tick() == set()
    deployment.dbt_build_passes()
    # signals wait for the models' first training (no champion to score with before it)
    assert deployment.tick() == {"features"}
    assert deployment.checks == {"features:indicators_valid"}
    assert deployment.tick() == set()


def test_a_failed_blocking_check_holds_every_downstream_asset_until_it_passes(tmp_path: Path):
    deployment = Deployment(tmp_path)
    deployment.tick()
    assert deployment.load()
    deployment.tick()
    deployment.dbt_build_passes()
    deployment.tick()

    # a bad candle written behind the loader's back
    with Warehouse(deployment.url) as warehouse, warehouse.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO raw_ohlc VALUES ('synthetic', 'BTC-USD', '15m', '2025-03-04 10:07:00+00', "
            "100, 99, 95, 105, -1, '2025-03-05 00:00:00+00')"
        )
    assert not deployment.load()  # raw_ohlc is written, then expectation_suite fails
    assert deployment.tick() == set()
    assert deployment.tick() == set()  # and stays held on later ticks

    with Warehouse(deployment.url) as warehouse, warehouse.begin() as connection:
        connection.exec_driver_sql("DELETE FROM raw_ohlc WHERE volume < 0")
    assert deployment.load()
    # the dbt tests passed before, so features may go in the same tick as the dbt models
    assert deployment.tick() == MODELS | DERIVED


def test_the_sensor_is_on_and_targets_features_and_labels(tmp_path: Path):
    defs, sensor = code_location(tmp_path)
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    targeted = sensor.asset_selection.resolve(defs.resolve_asset_graph())
    assert {key.to_user_string() for key in targeted} == DERIVED


# --- strategy_signals waits for a champion --------------------------------------------------------


def trained(deployment: Deployment, model: str, *, champion: bool) -> None:
    """A model's training: a skip or a refused first version fails has_champion; a promotion, or a
    champion kept from before, passes it."""
    recorded_run(deployment.instance, model, {"has_champion": champion})


def new_bar(deployment: Deployment) -> None:
    """A features run after a new bar, with its blocking check."""
    recorded_run(deployment.instance, "features", {"indicators_valid": True}, AssetCheckSeverity.ERROR)


def test_signals_wait_for_a_first_champion_then_follow_every_new_bar(tmp_path: Path):
    deployment = Deployment(tmp_path)
    assert "strategy_signals" not in deployment.tick()
    assert deployment.load()  # candles and their blocking checks, which signals also wait for
    deployment.dbt_build_passes()
    new_bar(deployment)
    # a fresh deployment: every model trained once and none has a champion (too few labels, or
    # no edge out of sample); before the has_champion gate this requested a failing run every bar
    for model in ("dca_model", "swing_model", "channel_model"):
        trained(deployment, model, champion=False)
    assert "strategy_signals" not in deployment.tick()
    for _ in range(3):  # new bars keep coming; still nothing to score with
        new_bar(deployment)
        assert "strategy_signals" not in deployment.tick()

    trained(deployment, "swing_model", champion=True)  # the first promotion
    assert "strategy_signals" in deployment.tick()
    deployment.instance.report_runless_asset_event(AssetMaterialization("strategy_signals"))
    assert "strategy_signals" not in deployment.tick(), "once per update"

    for _ in range(2):  # every new bar: one request
        new_bar(deployment)
        assert "strategy_signals" in deployment.tick()
        deployment.instance.report_runless_asset_event(AssetMaterialization("strategy_signals"))
        assert "strategy_signals" not in deployment.tick()
    # a later training refused its challenger: the champion stays, signals keep following the bars
    trained(deployment, "swing_model", champion=True)
    trained(deployment, "dca_model", champion=False)
    assert "strategy_signals" in deployment.tick()
    deployment.instance.report_runless_asset_event(AssetMaterialization("strategy_signals"))
    assert "strategy_signals" not in deployment.tick()
    new_bar(deployment)
    assert "strategy_signals" in deployment.tick()
    # evaluating the gate leaves the graph as it was (Dagster 1.13.27's check filter, used without
    # blocking_only, intersected the models' own check sets in place)
    graph = deployment.defs.resolve_asset_graph()
    for model in ("dca_model", "swing_model", "channel_model"):
        assert {key.name for key in graph.get(AssetKey(model)).check_keys} == MODEL_CHECKS


# --- a failed check on features or labels holds the models and the signals -----------------------

MONDAY = datetime(2025, 11, 24, tzinfo=UTC)  # RETRAIN_CRON fires at 02:00; a past week (see test_retraining)
TRAINED = {"dca_model", "swing_model", "channel_model"}


def bar(deployment: Deployment, failing: str | None = None) -> None:
    """Runs of features and the label tables after a new bar, each with its blocking check (the one
    of `failing` fails)."""
    for name, check in [
        ("features", "indicators_valid"),
        *((t, "outcomes_consistent") for t in sorted(LABELS)),
    ]:
        recorded_run(deployment.instance, name, {check: name != failing}, AssetCheckSeverity.ERROR)


@pytest.mark.parametrize(
    ("failing", "held"),
    [
        ("features", TRAINED | {"strategy_signals"}),
        # the signals read features and the champions, not the label tables: only dca_model waits
        ("strategy_dca_labels", {"dca_model"}),
    ],
)
def test_a_failed_check_on_features_or_labels_holds_the_weekly_retrain_and_signals_until_it_passes(
    tmp_path: Path, failing: str, held: set[str]
):
    """Dagster's all_deps_blocking_checks_passed looks at direct deps: a failing features check holds
    the models' weekly retrain and strategy_signals; a failing label check holds its model only."""
    deployment = Deployment(tmp_path)
    deployment.tick(MONDAY)
    assert deployment.load()  # candles and their blocking checks
    deployment.dbt_build_passes()
    bar(deployment)
    for model in TRAINED:
        trained(deployment, model, champion=True)
    assert "strategy_signals" in deployment.tick(MONDAY + timedelta(hours=1, minutes=5))
    deployment.instance.report_runless_asset_event(AssetMaterialization("strategy_signals"))
    deployment.tick(MONDAY + timedelta(hours=1, minutes=35))  # the signals run happened

    # the weekly cron has passed (02:00); the next bars fail a check of `failing`
    bar(deployment, failing)
    followers = TRAINED | {"strategy_signals"}
    assert deployment.tick(MONDAY + timedelta(hours=2, minutes=5)) & followers == followers - held
    bar(deployment, failing)
    assert not deployment.tick(MONDAY + timedelta(hours=3, minutes=5)) & held  # and stays held

    bar(deployment)  # the next run passes the check
    assert deployment.tick(MONDAY + timedelta(hours=4, minutes=5)) & held == held
