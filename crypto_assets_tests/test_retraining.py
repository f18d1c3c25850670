"""Models retrain on the weekly cron and earlier when their labels grow; never on every new bar, and
never on labels or features that failed a blocking check.

The sensors and conditions are those of the real code location (`build_defs`), as the daemon
evaluates them. A simulated week, one tick per hour: every hour new bars update the features and
the labels (with their blocking checks); the models' automation condition and the label-growth
sensor are evaluated, and a requested training is recorded as the model's materialization with the
labels it used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    MaterializeResult,
    RunRequest,
    SkipReason,
    asset,
    build_sensor_context,
    evaluate_automation_conditions,
    instance_for_test,
    materialize,
)
from dagster._core.test_utils import create_run_for_test, freeze_time

from crypto_assets.automation.retraining import RETRAIN_TAG
from crypto_assets.code_location import build_defs
from crypto_assets.errors import UserError
from crypto_assets.settings import load_settings

# A past week on purpose: part of Dagster's cron evaluation reads the real clock, so a simulated
# week that contains the real present would not behave like one that has passed.
WEDNESDAY = datetime(2025, 11, 19, tzinfo=UTC)
MONDAY_TICK = datetime(2025, 11, 24, 2, tzinfo=UTC)  # RETRAIN_CRON
LABELS = {f"strategy_{s}_labels": f"{s}_model" for s in ("dca", "swing", "channel")}
#: the blocking check of each asset a model trains on
CHECKS = {"features": "indicators_valid", **dict.fromkeys(LABELS, "outcomes_consistent")}


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


def real_defs(tmp_path: Path, **env: str) -> Definitions:
    """The code location as `crypto_assets.definitions` builds it, its stores under `tmp_path`."""
    return build_defs(load_settings({"CRYPTO_ASSETS_HOME": str(tmp_path / "home"), **env}))


class Week:
    def __init__(self, instance: DagsterInstance, defs: Definitions) -> None:
        self.instance = instance
        self.defs = defs
        self.sensor = defs.resolve_sensor_def("retrain_on_label_growth")
        # what the models_automation sensor evaluates: the models' weekly retrain condition
        self.models = defs.resolve_sensor_def("models_automation").asset_selection
        self.cursor = None
        self.trainings: list[tuple[datetime, str, str]] = []  # (when, model, why)

    def new_bars(self, labels: dict[str, int], failing: frozenset[str] = frozenset()) -> None:
        """A features run and label runs, each with its blocking check (failing for the assets named)."""
        for name, count in {"features": None, **labels}.items():
            metadata = {} if count is None else {"dagster/row_count": count}
            self.instance.report_runless_asset_event(AssetMaterialization(name, metadata=metadata))
            self.check(name, passed=name not in failing)

    def check(self, name: str, *, passed: bool) -> None:
        self.instance.report_runless_asset_event(
            AssetCheckEvaluation(
                asset_key=AssetKey(name), check_name=CHECKS[name], passed=passed,
                severity=AssetCheckSeverity.ERROR,
            )
        )  # fmt: skip

    def train(self, model: str, labels_used: int, why: str, now: datetime) -> None:
        self.instance.report_runless_asset_event(
            AssetMaterialization(model, metadata={"labels": labels_used, "promotion": "refused"})
        )
        self.trainings.append((now, model, why))

    def evaluate_sensor(self) -> list[RunRequest | SkipReason]:
        return list(self.sensor(build_sensor_context(instance=self.instance, definitions=self.defs)))

    def requested(self) -> list[RunRequest]:
        return [r for r in self.evaluate_sensor() if isinstance(r, RunRequest)]

    def skipped(self) -> str:
        (skip,) = self.evaluate_sensor()
        assert isinstance(skip, SkipReason), skip
        return skip.skip_message or ""

    def tick(self, now: datetime, labels: dict[str, int]) -> None:
        """One hour: new bars, then the automation daemon and the sensor daemon evaluate."""
        self.new_bars(labels)
        result = evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            asset_selection=self.models,
            cursor=self.cursor,
            evaluation_time=now + timedelta(minutes=5),
        )
        self.cursor = result.cursor
        for r in result.results:
            if r.true_subset.size and r.key.to_user_string().endswith("_model"):
                table = next(t for t, m in LABELS.items() if m == r.key.to_user_string())
                self.train(r.key.to_user_string(), labels[table], "cron", now)
        for request in self.requested():
            (model,) = request.asset_selection
            table = next(t for t, m in LABELS.items() if m == model.to_user_string())
            self.train(model.to_user_string(), labels[table], "labels", now)


@pytest.fixture
def week(instance: DagsterInstance, tmp_path: Path) -> Week:
    return Week(instance, real_defs(tmp_path))


def test_a_simulated_week_retrains_weekly_and_on_label_growth_only(week: Week):
    labels = dict.fromkeys(LABELS, 1000)
    with freeze_time(WEDNESDAY):
        for table, model in LABELS.items():
            week.new_bars({table: 1000})
            week.train(model, 1000, "initial", WEDNESDAY)
    week.trainings.clear()

    for hour in range(1, 7 * 24):
        now = WEDNESDAY + timedelta(hours=hour)
        # a few trades close each hour; DCA enters on more bars than the others
        labels = {table: count + (4 if "dca" in table else 2) for table, count in labels.items()}
        if now == datetime(2025, 11, 20, 12, tzinfo=UTC):
            labels["strategy_swing_labels"] = 1300  # a burst of closed swing trades: +30 % > 25 %
        week.tick(now, labels)

    swing_burst = datetime(2025, 11, 20, 12, tzinfo=UTC)
    assert (swing_burst, "swing_model", "labels") in week.trainings
    cron = sorted(model for when, model, why in week.trainings if why == "cron")
    assert cron == ["channel_model", "dca_model", "swing_model"]
    # on_cron waits for new bars after the tick: the bar loaded at 02:01, evaluated at 02:05
    assert {when for when, _, why in week.trainings if why == "cron"} == {MONDAY_TICK}
    # dca: 1000 -> 1250 labels after 63 hours (Friday 15:00); channel would need 125 hours, but
    # the Monday retrain resets its count first
    growth = sorted((when, model) for when, model, why in week.trainings if why == "labels")
    assert growth == [(swing_burst, "swing_model"), (WEDNESDAY + timedelta(hours=63), "dca_model")]
    # 167 hours of new bars, 5 trainings: never on every bar
    assert len(week.trainings) == 5


def test_no_early_retraining_while_the_model_is_training(week: Week):
    week.new_bars({"strategy_dca_labels": 1000})
    week.train("dca_model", 1000, "initial", WEDNESDAY)
    week.new_bars({"strategy_dca_labels": 2000})
    create_run_for_test(
        week.instance,
        job_name="__ASSET_JOB",
        status=DagsterRunStatus.STARTED,
        asset_selection={AssetKey("dca_model")},
    )
    assert week.requested() == []


def test_an_untrained_model_trains_once_its_labels_exist(week: Week):
    week.new_bars({"strategy_channel_labels": 1500})
    (request,) = week.requested()
    assert request.asset_selection == [AssetKey("channel_model")]
    assert request.tags[RETRAIN_TAG] == "never trained; 1500 closed labels"


@pytest.mark.parametrize("text", ["0", "-0.1", "lots", "25%"])
def test_a_bad_growth_setting_is_one_clear_error(text: str):
    with pytest.raises(
        UserError, match=rf"CRYPTO_ASSETS_RETRAIN_LABEL_GROWTH='{re.escape(text)}' is not a fraction"
    ):
        load_settings({"CRYPTO_ASSETS_RETRAIN_LABEL_GROWTH": text})
    assert load_settings({"CRYPTO_ASSETS_RETRAIN_LABEL_GROWTH": "0.5"}).retrain_label_growth == 0.5


def test_the_growth_setting_reaches_the_code_locations_sensor(instance: DagsterInstance, tmp_path: Path):
    week = Week(instance, real_defs(tmp_path, CRYPTO_ASSETS_RETRAIN_LABEL_GROWTH="0.5"))
    week.new_bars({"strategy_dca_labels": 1000})
    week.train("dca_model", 1000, "initial", WEDNESDAY)
    week.new_bars({"strategy_dca_labels": 1300})  # +30 %: enough at the default 25 %, not at 50 %
    assert week.requested() == []
    week.new_bars({"strategy_dca_labels": 1500})
    (request,) = week.requested()
    assert request.tags[RETRAIN_TAG] == "closed labels grew from 1000 to 1500 (threshold +50%)"


def test_no_first_training_before_the_features_exist(week: Week):
    week.instance.report_runless_asset_event(
        AssetMaterialization("strategy_dca_labels", metadata={"dagster/row_count": 1500})
    )
    assert "features are not materialized yet" in week.skipped()


# --- bad data holds the growth sensor -------------------------------------------------------------


@pytest.mark.parametrize("failing", ["features", "strategy_dca_labels"])
def test_a_failed_blocking_check_holds_the_first_training_until_it_passes(week: Week, failing: str):
    """A fresh deployment: labels and features written, one of them failed its blocking check."""
    week.new_bars({"strategy_dca_labels": 1500}, failing=frozenset({failing}))
    check = f"{failing}:{CHECKS[failing]}"
    for _ in range(2):  # and on later ticks
        assert week.skipped() == f"dca_model: blocking check {check} failed; asked again once it passes"
    week.check(failing, passed=True)  # a later run of the check passes
    (request,) = week.requested()
    assert request.asset_selection == [AssetKey("dca_model")]
    assert request.tags[RETRAIN_TAG] == "never trained; 1500 closed labels"


def test_grown_labels_wait_while_their_check_runs_fails_or_has_not_run(week: Week):
    week.new_bars({"strategy_dca_labels": 1000})
    week.train("dca_model", 1000, "initial", WEDNESDAY)
    during: list[str] = []
    # a labels run has written 1300 labels and is checking them when the sensor ticks
    asset_run(
        week.instance, "strategy_dca_labels", 1300, passed=True, during=lambda: during.append(week.skipped())
    )
    assert during == [
        "dca_model: blocking check strategy_dca_labels:outcomes_consistent is still running; "
        "asked again once it passes"
    ]
    (request,) = week.requested()  # once it passed
    assert request.tags[RETRAIN_TAG] == "closed labels grew from 1000 to 1300 (threshold +25%)"

    week.train("dca_model", 1300, "labels", WEDNESDAY)
    asset_run(week.instance, "strategy_dca_labels", 1700, passed=False)
    assert "strategy_dca_labels:outcomes_consistent failed" in week.skipped()
    asset_run(week.instance, "strategy_dca_labels", 1800, passed=True)
    # features written by a run that left out their check: its older pass does not vouch for them
    asset_run(week.instance, "features", passed=None)
    assert week.skipped() == (
        "dca_model: blocking check features:indicators_valid has not run on the newest features yet; "
        "asked again once it passes"
    )
    week.check("features", passed=True)
    assert [r.tags[RETRAIN_TAG] for r in week.requested()] == [
        "closed labels grew from 1300 to 1800 (threshold +25%)"
    ]


def asset_run(
    instance: DagsterInstance,
    name: str,
    count: int | None = None,
    *,
    passed: bool | None,
    during: Callable[[], None] = lambda: None,
) -> None:
    """A run of asset `name` and its blocking check (None: left out of the run), as Dagster
    records it: the check is planned when the run starts, the asset is written, then `during()`
    runs while the check has no result yet."""
    check = CHECKS[name]
    specs = [] if passed is None else [AssetCheckSpec(check, asset=name, blocking=True)]

    @asset(key=name, check_specs=specs)
    def stand_in():
        yield MaterializeResult(metadata={} if count is None else {"dagster/row_count": count})
        during()
        if passed is not None:
            yield AssetCheckResult(check_name=check, passed=passed)

    materialize([stand_in], instance=instance, raise_on_error=False)


def test_failed_trainings_back_off_until_one_succeeds_or_the_week_turns(week: Week):
    """A training that fails writes no materialization, so the grown labels ask again on every new
    bar. Simulated: dca labels grew past the threshold and stay there; every hour new bars, then
    the sensor; every training it asks for fails, but one (by hand, on Wednesday 06:30) succeeds.
    The sensor reads the time from Dagster's clock, which freeze_time sets."""
    instance = week.instance
    with freeze_time(WEDNESDAY):
        week.new_bars({"strategy_dca_labels": 1000})
        week.train("dca_model", 1000, "initial", WEDNESDAY)
    asked, skipped = [], {}
    labels = 1300
    hours = [WEDNESDAY + timedelta(hours=h) for h in range(1, 11)]
    monday = MONDAY_TICK - timedelta(hours=1)  # 01:00: a new week, before the weekly retrain
    for now in [*hours, monday]:
        if now == hours[6]:  # 07:00
            with freeze_time(now - timedelta(minutes=30)):
                week.train("dca_model", labels, "by hand", now)
            labels = 1700  # and a burst since: grown from that training too
        labels += 2
        with freeze_time(now):
            week.new_bars({"strategy_dca_labels": labels})
            for request in week.evaluate_sensor():
                if isinstance(request, SkipReason):
                    skipped[now] = request.skip_message
                    continue
                asked.append(now)
                run = create_run_for_test(
                    instance, job_name="__ASSET_JOB", asset_selection=set(request.asset_selection),
                    tags=request.tags,
                )  # fmt: skip
                instance.report_run_failed(run)  # the training fails
    # three failures, then quiet; the success resets the count; so does a new week
    assert asked == [*hours[0:3], *hours[6:9], monday]
    assert skipped[hours[3]].startswith(
        "dca_model: 3 trainings failed since 2025-11-19 00:00 UTC, not asked again until one succeeds"
    )
    assert skipped[hours[9]].startswith("dca_model: 3 trainings failed since 2025-11-19 06:30 UTC")
