"""Materialize assets for a range of daily partitions as recorded Dagster runs."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from dagster import (
    AssetCheckEvaluation,
    AssetSelection,
    DagsterInstance,
    DagsterRunStatus,
    ExecuteInProcessResult,
    RunsFilter,
    materialize,
)

from crypto_assets.errors import UserError

LAUNCHED_BY = "crypto_assets/launched_by"
PID_TAG = "crypto_assets/pid"
HOST_TAG = "crypto_assets/host"
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class RangeRunOutcome:
    run_ids: list[str] = field(default_factory=list)
    checks: list[AssetCheckEvaluation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    user_errors: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)  # why a follow-up run was left out

    @property
    def success(self) -> bool:
        return not self.errors and not self.user_errors


@dataclass(frozen=True)
class FollowUp:
    """Assets to materialize once after the partitioned runs, unless `not_ready()` gives a reason."""

    selection: AssetSelection
    not_ready: Callable[[], str | None] = lambda: None


def day_chunks(start: date, end: date, days_per_run: int) -> list[tuple[date, date]]:
    """Inclusive [first, last] day ranges covering start..end, each at most `days_per_run` long."""
    if end < start:
        raise UserError(f"--end {end} is before --start {start}: swap them")
    chunks = []
    first = start
    while first <= end:
        last = min(end, first + timedelta(days=days_per_run - 1))
        chunks.append((first, last))
        first = last + timedelta(days=1)
    return chunks


def materialize_days(
    assets: Sequence,
    resources: dict,
    instance: DagsterInstance,
    *,
    start: date,
    end: date,
    selection: AssetSelection,
    symbols: Sequence[str] | None = None,
    days_per_run: int = 31,
    then: Sequence[FollowUp] = (),
    on_chunk: Callable[[date, date, ExecuteInProcessResult], None] | None = None,
) -> RangeRunOutcome:
    """One single-run backfill of `selection` per chunk of days, each recorded in `instance` like a UI
    backfill; then, once each and in order, a run of every follow-up that is ready (the assets
    downstream rebuild once from everything loaded, not once per chunk)."""
    outcome = RangeRunOutcome()
    release_abandoned_runs(instance)
    run_config: dict = dict(QUIET_LOGS)
    if symbols:
        run_config["ops"] = {"raw_ohlc": {"config": {"symbols": list(symbols)}}}
    for first, last in day_chunks(start, end, days_per_run):
        partition_range = {
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        }
        result = _run(assets, resources, instance, selection, run_config, partition_range, outcome)
        if on_chunk:
            on_chunk(first, last, result)
        if outcome.user_errors:
            break  # a configuration or input mistake fails every chunk the same way
    for follow_up in then:
        if outcome.user_errors:
            break
        reason = follow_up.not_ready()
        if reason:
            outcome.not_run.append(reason)
            continue
        _run(assets, resources, instance, follow_up.selection, dict(QUIET_LOGS), {}, outcome)
    return outcome


def _run(
    assets: Sequence,
    resources: dict,
    instance: DagsterInstance,
    selection: AssetSelection,
    run_config: dict,
    tags: dict[str, str],
    outcome: RangeRunOutcome,
) -> ExecuteInProcessResult:
    result = materialize(
        assets,
        resources=resources,
        instance=instance,
        selection=selection,
        run_config=run_config,
        tags={
            **tags,
            LAUNCHED_BY: "crypto-assets cli",
            PID_TAG: str(os.getpid()),
            HOST_TAG: socket.gethostname(),
        },
        raise_on_error=False,
    )
    outcome.run_ids.append(result.run_id)
    outcome.checks.extend(result.get_asset_check_evaluations())
    for message, is_user_error in _failures(result):
        (outcome.user_errors if is_user_error else outcome.errors).append(message)
    return result


def release_abandoned_runs(instance: DagsterInstance) -> list[str]:
    """Fail CLI runs whose process is gone (killed, power loss) and free their pool slots.

    In-process runs hold a slot of the `warehouse_writes` pool while they write; a killed
    process never gives it back, and the next run would wait forever. The daemon's run
    monitoring does this for daemon-launched runs; CLI runs have no daemon watching them.
    """
    released = []
    in_flight = RunsFilter(
        statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING],
        tags={LAUNCHED_BY: "crypto-assets cli", HOST_TAG: socket.gethostname()},
    )
    for run in instance.get_runs(filters=in_flight):
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid and _process_alive(pid):
            continue
        instance.report_run_failed(run, f"process {pid} that ran it is gone (killed?)")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _failures(result: ExecuteInProcessResult) -> list[tuple[str, bool]]:
    found = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            found.append((data.user_failure_data.description, False))
            continue
        error = data.error
        while error is not None:
            if error.cls_name == "UserError":
                found.append((error.message.split(": ", 1)[-1].strip(), True))
                break
            if error.cause is None:
                found.append((error.message.strip().splitlines()[0], False))
            error = error.cause
    return found
