"""Which checks are failing, partition by partition, and what changed since the sensor last looked.

A check of an unpartitioned kind has one state: its latest result. A partitioned check (its spec
has the asset's partitions) is failing while its latest result on **any** partition that was
evaluated is a failure: a pass on today's partition does not hide yesterday's failure. A run over
a range of partitions (a single-run backfill) evaluates such a check once for the whole range;
Dagster records that result without a partition, and it counts for every partition the run
planned the check for.

Read from Dagster's per-partition check records (the latest execution of each check and
partition, in the instance's index, so the same on SQLite and PostgreSQL): the first look reads
them all, later looks only those changed after the storage id the previous look started at (a
record that lands during a look is read again next time, which is harmless: results are states).
Limit: if two single-run backfills of one check both finish between two looks (30 s), only the
later one's result is seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import AssetCheckKey, DagsterEventType, DagsterInstance

from crypto_assets.automation.alert_changes import Alert, alert, first_line

WHOLE = ""  # the one "partition" of an unpartitioned check, or of a run that planned none
#: in a cursor written before partitions were tracked: "this check was failing"
LEGACY_FAILING = "*"


@dataclass(frozen=True)
class Result:
    order: int  # storage id of the event the record was last updated by
    check: AssetCheckKey
    partitions: tuple[str, ...]
    passed: bool
    run_id: str
    evaluation: Any = None  # the AssetCheckEvaluation, when it was read on the way


def check_changes(
    instance: DagsterInstance,
    checks: Mapping[AssetCheckKey, bool],
    failing: Mapping[str, list[str]],
    after: int | None,
) -> tuple[list[Alert], dict[str, list[str]], int]:
    """Alerts for checks that started failing on a partition or pass again everywhere, the new
    failing partitions per check and the storage id to start from next time. `checks` maps each
    check to whether it is partitioned; `failing` and `after` are what the previous look
    returned (`after` None: the first look, which reports what is failing now)."""
    storage = instance.event_log_storage
    position = storage.get_maximum_record_id() or 0  # before reading: nothing lands unseen
    infos = storage.get_asset_check_partition_info(list(checks), after_storage_id=after) if checks else []
    runs = _RunChecks(instance)
    results = [result for info in infos if (result := _result(info, checks, runs)) is not None]
    alerts, now = fold(results, failing, lambda result: _evaluation_of(instance, result))
    return alerts, now, position


def failing_checks(instance: DagsterInstance, checks: Mapping[AssetCheckKey, bool]) -> dict[str, Alert]:
    """Every check failing now (on any partition), with the alert a sensor starting now would send."""
    alerts, _, _ = check_changes(instance, checks, {}, None)
    return {item["subject"]: item for item in alerts if item["kind"] == "check_failed"}


def fold(
    results: Iterable[Result], failing: Mapping[str, list[str]], evaluation_of: Callable[[Result], Any]
) -> tuple[list[Alert], dict[str, list[str]]]:
    """Apply `results` in storage order to the failing partitions; alert on what changed."""
    before = {name: set(parts) for name, parts in failing.items()}
    now = {name: set(parts) for name, parts in before.items()}
    failures: dict[tuple[str, str], Result] = {}
    for result in sorted(results, key=lambda r: r.order):
        name = result.check.to_user_string()
        parts = now.setdefault(name, set())
        parts.discard(LEGACY_FAILING)
        if result.passed:
            parts.difference_update(result.partitions)
        else:
            parts.update(result.partitions)
            failures.update({(name, p): result for p in result.partitions})
    alerts = []
    for name in sorted(now):
        was = before.get(name, set())
        if LEGACY_FAILING in was:
            was = now[name] or was  # known failing before partitions were tracked: no repeat
        new = now[name] - was
        if new:
            newest = max((failures[(name, p)] for p in new), key=lambda r: r.order)
            alerts.append(_failed(name, newest, evaluation_of(newest), sorted(new), len(now[name] - new)))
        elif was and not now[name]:
            where = " on every partition" if was - {WHOLE, LEGACY_FAILING} else ""
            alerts.append(alert("check_recovered", "recovered", name, f"check {name} passes again{where}"))
    return alerts, {name: sorted(parts) for name, parts in now.items() if parts}


def _result(info, checks: Mapping[AssetCheckKey, bool], runs: _RunChecks) -> Result | None:
    """What one per-partition record says, or None when it says nothing yet."""
    key, run_id, status = info.check_key, info.latest_planned_run_id, info.latest_execution_status.value
    partitioned = checks.get(key, False)
    order = info.latest_check_event_storage_id
    if status in ("SUCCEEDED", "FAILED"):
        if info.partition_key is not None and partitioned:
            parts: tuple[str, ...] = (info.partition_key,)
        elif partitioned:  # evaluated once over the run's range
            parts = runs.planned(run_id, key) or (WHOLE,)
        else:
            parts = (WHOLE,)
        return Result(order, key, parts, status == "SUCCEEDED", run_id)
    if not partitioned or info.partition_key is None:
        return None  # planned or running (an unpartitioned check's runs plan it per partition too)
    # planned for this partition by a run over a range: that run's one result, once it has one
    evaluation = runs.evaluation(run_id, key)
    if evaluation is None:
        return None
    return Result(order, key, (info.partition_key,), bool(evaluation.passed), run_id, evaluation)


class _RunChecks:
    """What one run planned and evaluated for each check, read once per run and look."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.storage = instance.event_log_storage
        self._planned: dict[str, dict[AssetCheckKey, tuple[str, ...]]] = {}
        self._evaluated: dict[str, dict[AssetCheckKey, Any]] = {}

    def planned(self, run_id: str, key: AssetCheckKey) -> tuple[str, ...]:
        if run_id not in self._planned:
            found: dict[AssetCheckKey, tuple[str, ...]] = {}
            for data in self._events(run_id, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED):
                if getattr(data, "partitions_subset", None) is not None:
                    found[data.asset_check_key] = tuple(data.partitions_subset.get_partition_keys())
            self._planned[run_id] = found
        return self._planned[run_id].get(key, ())

    def evaluation(self, run_id: str, key: AssetCheckKey):
        """The run's newest result of `key` recorded without a partition (for its whole range)."""
        if run_id not in self._evaluated:
            self._evaluated[run_id] = {
                data.asset_check_key: data
                for data in self._events(run_id, DagsterEventType.ASSET_CHECK_EVALUATION)
                if data.partition is None
            }
        return self._evaluated[run_id].get(key)

    def _events(self, run_id: str, kind: DagsterEventType) -> list[Any]:
        records = self.storage.get_records_for_run(run_id, of_type=kind).records
        return [
            r.event_log_entry.dagster_event.event_specific_data
            for r in records
            if r.event_log_entry.dagster_event
        ]


def _evaluation_of(instance: DagsterInstance, result: Result):
    """The evaluation behind `result` (for a failure's words), read only for what is alerted."""
    if result.evaluation is not None:
        return result.evaluation
    from dagster._core.event_api import PartitionKeyFilter  # not exported; the storage's own filter

    partition = result.partitions[0] if len(result.partitions) == 1 and result.partitions[0] else None
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [result.check], partition_filter=PartitionKeyFilter(key=partition)
    ).get(result.check)
    data = latest.event.dagster_event.event_specific_data if latest and latest.event else None
    if not hasattr(data, "passed"):  # the partition's record is a plan: its result is the run's
        data = _RunChecks(instance).evaluation(result.run_id, result.check)
    return data


def _failed(name: str, result: Result, evaluation, new: list[str], others: int) -> Alert:
    severity = evaluation.severity.value if evaluation is not None else "ERROR"
    blocking = bool(evaluation is not None and evaluation.blocking)
    description = first_line(evaluation.description) if evaluation is not None else ""
    holds = ", blocking: downstream assets wait" if blocking else ""
    also = f"; failing on {others} other partition(s) too" if others else ""
    text = f"check {name} failed{_where(new)} ({severity}{holds}): {description}{also}"
    partitions = [p for p in new if p != WHOLE]
    return alert(
        "check_failed", "failed", name, text, severity=severity, blocking=blocking,
        partition=partitions[-1] if partitions else None, partitions=partitions or None,
        description=description or None, run_id=result.run_id,
    )  # fmt: skip


def _where(partitions: list[str]) -> str:
    named = [p for p in partitions if p != WHOLE]
    if not named:
        return ""
    if len(named) <= 3:
        return " on " + ", ".join(named)
    return f" on {len(named)} partitions from {named[0]} to {named[-1]}"
