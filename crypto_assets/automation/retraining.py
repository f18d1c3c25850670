"""When the models retrain: weekly, and earlier when a strategy's closed labels have grown.

Never on every new bar: a model trained on last week's labels scores this week's bars well, and
each training costs minutes. Signals follow every bar instead (REBUILD_ON_UPSTREAM_UPDATE).

A training that fails writes no materialization, so its labels still look grown on the next
label write (every bar): the growth sensor backs off after MAX_FAILED_TRAININGS failed runs of a
model since its newest training and in the current week (from Monday 00:00 UTC), and asks again
once a training succeeds or the week turns; the weekly cron retrain is not held back.

Neither retrains on data that failed its checks: the weekly condition waits for the blocking
checks of a model's upstream assets (its labels and `features`) to pass, and so does the growth
sensor, judging each check as Dagster's `check_passed()` does: its newest execution passed, on
its asset's newest materialization.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._time import get_current_datetime  # the clock freeze_time sets in tests

if TYPE_CHECKING:
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord

#: Mondays 02:00 UTC, a quiet hour for exchanges and for the warehouse
RETRAIN_CRON = "0 2 * * 1"
# Not before its labels and features exist, nor while they are being written: on a fresh
# deployment the features run and a model's run could otherwise start from the same tick.
RETRAIN_WEEKLY = (
    AutomationCondition.on_cron(RETRAIN_CRON)
    & AutomationCondition.all_deps_blocking_checks_passed()
    & ~AutomationCondition.any_deps_missing()
    & ~AutomationCondition.any_deps_in_progress()
).with_label("weekly retrain")
#: the run tag naming why a model retrains early
RETRAIN_TAG = "crypto_assets/retrain"
FEATURES = AssetKey("features")
MAX_FAILED_TRAININGS = 3
UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def build_models_sensor(models: list[AssetsDefinition]) -> AutomationConditionSensorDefinition:
    return AutomationConditionSensorDefinition(
        "models_automation",
        target=models,
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description=f"Retrains every strategy's model on the weekly cron ({RETRAIN_CRON}, UTC).",
    )


def label_growth(instance, labels: AssetKey, model: AssetKey, growth: float) -> tuple[str | None, int]:
    """Why `model` should retrain now (None: it should not), and the storage id of the label
    materialization that says so (a run key: one request per state of the labels)."""
    labelled = _newest(instance, labels)
    if labelled is None:
        return None, 0
    count = int(_value(labelled.asset_materialization.metadata, "dagster/row_count", 0))
    trained = _newest(instance, model)
    if trained is None:
        return (f"never trained; {count} closed labels" if count else None), labelled.storage_id
    # against the newest training, promoted or not: a refused challenger already saw those labels
    used = int(_value(trained.asset_materialization.metadata, "labels", 0))
    if count >= max(1, used) * (1 + growth):
        return f"closed labels grew from {used} to {count} (threshold +{growth:.0%})", labelled.storage_id
    return None, labelled.storage_id


def _newest(instance, key: AssetKey):
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=1).records
    return records[0] if records else None


def build_label_growth_sensor(model_by_labels: Mapping[AssetKey, AssetKey], *, growth: float) -> object:
    """A sensor that retrains a model when its labels have grown by `growth` (0.25 = 25 %) since its
    newest training. One request per label materialization; none while the model is training, nor
    while a blocking check upstream of it has not passed, nor after MAX_FAILED_TRAININGS failed
    trainings this week since its newest training."""

    @sensor(
        name="retrain_on_label_growth",
        asset_selection=list(model_by_labels.values()),
        default_status=DefaultSensorStatus.RUNNING,
        # A tick reads a few materialization and run records, so every minute is cheap; on a fresh
        # deployment the first training (never trained) starts a minute after labels and features
        # exist, not up to five (models_automation's weekly cron would wait for Monday).
        minimum_interval_seconds=60,
        description=(
            f"Retrains a strategy's model early when its closed labels have grown by {growth:.0%} "
            "since its newest training, once the blocking checks of its labels and features pass; "
            f"stops asking after {MAX_FAILED_TRAININGS} failed trainings until one succeeds or the "
            "week turns."
        ),
    )
    def retrain_on_label_growth(context: SensorEvaluationContext) -> Iterator[RunRequest | SkipReason]:
        requested, held = False, []
        if _newest(context.instance, FEATURES) is None:
            yield SkipReason("features are not materialized yet: a model trains on labels and features")
            return
        if context.repository_def is None:  # the daemon passes it; a test passes `definitions=`
            raise ValueError("retrain_on_label_growth reads its code location's asset graph")
        graph = context.repository_def.asset_graph
        for labels, model in model_by_labels.items():
            reason, labels_id = label_growth(context.instance, labels, model, growth)
            if reason is None or _training(context.instance, model):
                continue
            unchecked = failing_blocking_check(context.instance, graph, model)
            if unchecked:
                held.append(f"{model.to_user_string()}: {unchecked}; asked again once it passes")
                continue
            since = _failures_count_since(context.instance, model, get_current_datetime())
            failed = failed_trainings(context.instance, model, since)
            if failed >= MAX_FAILED_TRAININGS:
                held.append(
                    f"{model.to_user_string()}: {failed} trainings failed since {since:%Y-%m-%d %H:%M} UTC, "
                    "not asked again until one succeeds or the week turns (see its failed runs)"
                )
                continue
            requested = True
            yield RunRequest(
                run_key=f"{model.to_user_string()}@labels-{labels_id}",
                asset_selection=[model],
                tags={RETRAIN_TAG: reason},
            )
            context.log.info(f"{model.to_user_string()}: {reason}")
        if not requested:
            yield SkipReason(
                "; ".join(held) or "no strategy's labels grew enough since its model was trained"
            )

    return retrain_on_label_growth


def failing_blocking_check(instance: DagsterInstance, graph: BaseAssetGraph, model: AssetKey) -> str | None:
    """The first blocking check of `model`'s upstream assets that has not passed, and why (None:
    all passed). `graph` is the code location's resolved asset graph."""
    keys = sorted(
        key
        for parent in graph.get(model).parent_keys
        for key in graph.get(parent).check_keys
        if graph.get(key).blocking
    )
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys) if keys else {}
    for key in keys:
        why = _not_passed(instance, key, latest.get(key))
        if why:
            return f"blocking check {key.to_user_string()} {why}"
    return None


def _not_passed(
    instance: DagsterInstance, key: AssetCheckKey, record: AssetCheckExecutionRecord | None
) -> str | None:
    """Why the newest execution `record` of `key` does not count as passed, or None. A pass counts
    only for the materialization it checked: a newer one is unchecked until its own check runs."""
    if record is None:
        return "has not run yet"
    # PLANNED until its result is recorded, then SUCCEEDED or FAILED
    if record.status is AssetCheckExecutionRecordStatus.FAILED:
        return "failed"
    if record.status is AssetCheckExecutionRecordStatus.PLANNED:
        run = instance.get_run_by_id(record.run_id)
        return "is still running" if run is not None and not run.is_finished else "did not complete"
    newest = _newest(instance, key.asset_key)
    if newest is None or newest.run_id == record.run_id:
        return None
    target = getattr(record.evaluation, "target_materialization_data", None)
    # without a target (a result reported from outside a run): checked if it came later, by the
    # event's own time (the record's create_timestamp is whole seconds on SQLite)
    when = record.event.timestamp if record.event else record.create_timestamp
    checked = target.storage_id == newest.storage_id if target else when > newest.timestamp
    return None if checked else f"has not run on the newest {key.asset_key.to_user_string()} yet"


def failed_trainings(instance, model: AssetKey, since: datetime) -> int:
    """Failed runs that were to materialize `model` (early, weekly or by hand) after `since`."""
    runs = instance.get_run_records(
        RunsFilter(statuses=[DagsterRunStatus.FAILURE], updated_after=since), limit=200
    )
    return sum(model in (record.dagster_run.asset_selection or ()) for record in runs)


def _failures_count_since(instance, model: AssetKey, now: datetime) -> datetime:
    """The later of the model's newest training and the start of the week (Monday 00:00 UTC)."""
    week = datetime.combine((now - timedelta(days=now.weekday())).date(), datetime.min.time(), UTC)
    trained = _newest(instance, model)
    return max(week, datetime.fromtimestamp(trained.timestamp, UTC)) if trained else week


def _training(instance, model: AssetKey) -> bool:
    """Whether a queued or running run (weekly, early or launched by hand) materializes `model`."""
    runs = instance.get_run_records(RunsFilter(statuses=UNFINISHED), limit=200)
    return any(model in (record.dagster_run.asset_selection or ()) for record in runs)


def _value(metadata: Mapping, key: str, default: float) -> float:
    entry = metadata.get(key)
    return default if entry is None else entry.value
