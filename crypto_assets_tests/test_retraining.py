"""Models retrain on the weekly cron and earlier when their labels grow; never on every bar.

A simulated week, one tick per hour: every hour new bars update the features and the labels;
the models' automation condition and the label-growth sensor are evaluated as the daemon would,
and a requested training is recorded as the model's materialization with the labels it used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    RunRequest,
    SkipReason,
    build_sensor_context,
    evaluate_automation_conditions,
    instance_for_test,
)
from dagster._core.test_utils import create_run_for_test, freeze_time

from crypto_assets.automation.retraining import RETRAIN_TAG, build_label_growth_sensor
from crypto_assets.errors import UserError
from crypto_assets.features.assets import build_features
from crypto_assets.labels.assets import build_label_assets
from crypto_assets.market import Timeframe
from crypto_assets.models.assets import build_model_assets, models_by_labels
from crypto_assets.resources import mlflow_resource, shared_resources
from crypto_assets.settings import load_settings

# A past week on purpose: part of Dagster's cron evaluation reads the real clock, so a simulated
# week that contains the real present would not behave like one that has passed.
WEDNESDAY = datetime(2025, 11, 19, tzinfo=UTC)
MONDAY_TICK = datetime(2025, 11, 24, 2, tzinfo=UTC)  # RETRAIN_CRON
LABELS = {f"strategy_{s}_labels": f"{s}_model" for s in ("dca", "swing", "channel")}


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


class Week:
    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self.defs = Definitions(
            assets=[
                build_features(Timeframe.parse("15m")),
                *build_label_assets(Timeframe.parse("15m")),
                *build_model_assets(Timeframe.parse("15m")),
            ],
            resources={**shared_resources(load_settings({})), "mlflow": mlflow_resource(load_settings({}))},
        )
        self.sensor = build_label_growth_sensor(models_by_labels(), growth=0.25)
        self.cursor = None
        self.trainings: list[tuple[datetime, str, str]] = []  # (when, model, why)

    def new_bars(self, labels: dict[str, int]) -> None:
        self.instance.report_runless_asset_event(AssetMaterialization("features"))
        for table, count in labels.items():
            self.instance.report_runless_asset_event(
                AssetMaterialization(table, metadata={"dagster/row_count": count})
            )

    def train(self, model: str, labels_used: int, why: str, now: datetime) -> None:
        self.instance.report_runless_asset_event(
            AssetMaterialization(model, metadata={"labels": labels_used, "promotion": "refused"})
        )
        self.trainings.append((now, model, why))

    def tick(self, now: datetime, labels: dict[str, int]) -> None:
        """One hour: new bars, then the automation daemon and the sensor daemon evaluate."""
        self.new_bars(labels)
        result = evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            cursor=self.cursor,
            evaluation_time=now + timedelta(minutes=5),
        )
        self.cursor = result.cursor
        for r in result.results:
            if r.true_subset.size and r.key.to_user_string().endswith("_model"):
                table = next(t for t, m in LABELS.items() if m == r.key.to_user_string())
                self.train(r.key.to_user_string(), labels[table], "cron", now)
        for request in self.sensor(build_sensor_context(instance=self.instance)):
            if isinstance(request, RunRequest):
                (model,) = request.asset_selection
                table = next(t for t, m in LABELS.items() if m == model.to_user_string())
                self.train(model.to_user_string(), labels[table], "labels", now)


def test_a_simulated_week_retrains_weekly_and_on_label_growth_only(instance: DagsterInstance):
    week = Week(instance)
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


def test_no_early_retraining_while_the_model_is_training(instance: DagsterInstance):
    week = Week(instance)
    week.new_bars({"strategy_dca_labels": 1000})
    week.train("dca_model", 1000, "initial", WEDNESDAY)
    week.new_bars({"strategy_dca_labels": 2000})
    create_run_for_test(
        instance,
        job_name="__ASSET_JOB",
        status=DagsterRunStatus.STARTED,
        asset_selection={AssetKey("dca_model")},
    )
    requests = [r for r in week.sensor(build_sensor_context(instance=instance)) if isinstance(r, RunRequest)]
    assert requests == []


def test_an_untrained_model_trains_once_its_labels_exist(instance: DagsterInstance):
    week = Week(instance)
    week.new_bars({"strategy_channel_labels": 1500})
    (request,) = [
        r for r in week.sensor(build_sensor_context(instance=instance)) if isinstance(r, RunRequest)
    ]
    assert request.asset_selection == [AssetKey("channel_model")]
    assert request.tags[RETRAIN_TAG] == "never trained; 1500 closed labels"


@pytest.mark.parametrize("text", ["0", "-0.1", "lots", "25%"])
def test_a_bad_growth_setting_is_one_clear_error(text: str):
    with pytest.raises(
        UserError, match=rf"CRYPTO_ASSETS_RETRAIN_LABEL_GROWTH='{re.escape(text)}' is not a fraction"
    ):
        load_settings({"CRYPTO_ASSETS_RETRAIN_LABEL_GROWTH": text})
    assert load_settings({"CRYPTO_ASSETS_RETRAIN_LABEL_GROWTH": "0.5"}).retrain_label_growth == 0.5


def test_no_first_training_before_the_features_exist(instance: DagsterInstance):
    week = Week(instance)
    instance.report_runless_asset_event(
        AssetMaterialization("strategy_dca_labels", metadata={"dagster/row_count": 1500})
    )
    (skip,) = list(week.sensor(build_sensor_context(instance=instance)))
    assert "features are not materialized yet" in skip.skip_message


def test_failed_trainings_back_off_until_one_succeeds_or_the_week_turns(instance: DagsterInstance):
    """A training that fails writes no materialization, so the grown labels ask again on every new
    bar. Simulated: dca labels grew past the threshold and stay there; every hour new bars, then
    the sensor; every training it asks for fails, but one (by hand, on Wednesday 06:30) succeeds."""
    week = Week(instance)
    clock = [WEDNESDAY]
    sensor = build_label_growth_sensor(models_by_labels(), growth=0.25, clock=lambda: clock[0])
    with freeze_time(WEDNESDAY):
        week.new_bars({"strategy_dca_labels": 1000})
        week.train("dca_model", 1000, "initial", WEDNESDAY)
    asked, skipped = [], {}
    labels = 1300
    hours = [WEDNESDAY + timedelta(hours=h) for h in range(1, 11)]
    monday = MONDAY_TICK - timedelta(hours=1)  # 01:00: a new week, before the weekly retrain
    for now in [*hours, monday]:
        clock[0] = now
        if now == hours[6]:  # 07:00
            with freeze_time(now - timedelta(minutes=30)):
                week.train("dca_model", labels, "by hand", now)
            labels = 1700  # and a burst since: grown from that training too
        labels += 2
        with freeze_time(now):
            week.new_bars({"strategy_dca_labels": labels})
            for request in sensor(build_sensor_context(instance=instance)):
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
