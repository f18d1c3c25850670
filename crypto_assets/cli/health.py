"""What the Dagster instance says about the code location's health, for `crypto-assets status`.

Everything here is read from what Dagster already records (materializations, check executions,
runs, the model assets' metadata), nothing is recomputed from the warehouse:
- per asset: its newest materialization and that age against its freshness policy;
- per check: its latest result (failing ones with their description);
- per job: its last failed run, counted as a problem while no later run of the job succeeded;
- per model: the champion version, when it was trained and its out-of-sample AUC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance, PartitionKeyRange

FRESH, LATE, STALE, NEVER = "fresh", "late", "stale", "never materialized"


@dataclass
class Health:
    assets: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)

    def problems(self) -> list[str]:
        """One line per thing that makes the deployment unhealthy (exit code 1)."""
        found = [f"{a['asset']} {a['state']}" for a in self.assets if a["state"] in (STALE, NEVER)]
        found += [f"check {c['check']} failed: {c['description']}" for c in self.checks if c["problem"]]
        found += [
            f"run {r['run_id'][:8]} of {r['job']} failed: {r['error']}" for r in self.runs if r["problem"]
        ]
        return found

    def warnings(self) -> list[str]:
        found = [f"{a['asset']} late" for a in self.assets if a["state"] == LATE]
        found += [
            f"check {c['check']} warns: {c['description']}"
            for c in self.checks
            if c["status"] == "failed" and not c["problem"]
        ]
        return found


def read_health(instance: DagsterInstance, graph, models: Iterable[AssetKey], now: datetime) -> Health:
    """The health of every asset and check of `graph` (a resolved asset graph) in `instance`."""
    health = Health()
    for node in sorted(graph.asset_nodes, key=lambda n: n.key.to_user_string()):
        health.assets.append(_asset(instance, node, now))
    from crypto_assets.automation.alert_checks import failing_checks

    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        sorted(graph.asset_check_keys)
    )
    partitioned = {key: graph.get(key).partitions_def is not None for key in graph.asset_check_keys}
    failing = failing_checks(instance, partitioned)  # the alerts sensor's definition of failing
    for key in sorted(graph.asset_check_keys):
        health.checks.append(_check(graph, key, latest.get(key), failing.get(key.to_user_string())))
    health.runs = _failed_runs(instance, graph)
    health.models = [_model(instance, key, now) for key in models]
    return health


def _asset(instance: DagsterInstance, node, now: datetime) -> dict[str, Any]:
    name = node.key.to_user_string()
    policy = node.freshness_policy
    entry = instance.get_latest_materialization_event(node.key)
    row: dict[str, Any] = {"asset": name, "group": node.group_name, "last_materialized": None, "age": None}
    if entry is None:
        return {**row, "state": NEVER}
    when = datetime.fromtimestamp(entry.timestamp, UTC)
    age = now - when
    state = FRESH
    fail = getattr(policy, "fail_window", None)
    warn = getattr(policy, "warn_window", None)
    if fail is not None and age > fail.to_timedelta():
        state = STALE
    elif warn is not None and age > warn.to_timedelta():
        state = LATE
    return {
        **row,
        "last_materialized": when.isoformat(timespec="seconds"),
        "age": age_text(age.total_seconds()),
        "state": state,
        "allowed": age_text(fail.to_timedelta().total_seconds()) if fail is not None else None,
    }


def _check(graph, key, record, failing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The latest result of a check; a partitioned check whose latest result passed is still
    failing while an older partition's latest result fails (`failing` says which)."""
    name = key.to_user_string()
    row: dict[str, Any] = {"check": name, "status": "not run", "severity": None, "problem": False}
    row["description"] = graph.get(key).description or ""
    event = record.event if record is not None else None
    evaluation = event.dagster_event.event_specific_data if event and event.dagster_event else None
    if failing is not None and (not hasattr(evaluation, "passed") or evaluation.passed):
        details = failing["details"]
        where = ", ".join(details.get("partitions") or []) or "its latest run"
        severity = details.get("severity", "ERROR")
        row.update(
            status="failed",
            severity=severity,
            problem=severity == "ERROR",
            partition=details.get("partition"),
        )
        what = f"failing on {where}: {details.get('description', '')}".rstrip(": ")
        row["description"] = "; ".join(t for t in (what, row["description"]) if t)
        return row
    if not hasattr(evaluation, "passed"):
        return row
    severity = evaluation.severity.value
    passed = bool(evaluation.passed)
    row.update(
        status="passed" if passed else "failed",
        severity=severity,
        when=datetime.fromtimestamp(event.timestamp, UTC).isoformat(timespec="seconds"),
        problem=not passed and severity == "ERROR",
        partition=evaluation.partition,
    )
    if not passed:  # what failed, in the check's words, then what the check is for
        row["description"] = "; ".join(t for t in (evaluation.description, row["description"]) if t)
    return row


def _failed_runs(instance: DagsterInstance, graph) -> list[dict[str, Any]]:
    """The last failed run of each job (of each asset set, for runs without a named job, as the
    CLI's); a problem until every asset it failed to write has been materialized since, in every
    partition the run was for (a later load of today does not hide a failed backfill of an old
    day). "Since" is by event storage id, which orders events exactly where timestamps may tie."""
    from crypto_assets.automation.alert_changes import unmaterialized_assets

    failures = instance.fetch_run_status_changes(DagsterEventType.RUN_FAILURE, limit=200).records
    rows, seen = [], set()
    for failure in failures:  # newest first
        run = instance.get_run_by_id(failure.event_log_entry.run_id)
        if run is None:
            continue
        assets = unmaterialized_assets(instance, run.run_id)
        job = run.job_name if not run.job_name.startswith("__") else ", ".join(assets) or run.job_name
        if job in seen:
            continue
        seen.add(job)
        rows.append(
            {
                "job": job,
                "run_id": run.run_id,
                "failed_at": datetime.fromtimestamp(failure.timestamp, UTC).isoformat(timespec="seconds"),
                "assets": assets,
                "error": _run_error(instance, run.run_id),
                "problem": any(
                    not _materialized_after(instance, graph, run, name, failure.storage_id) for name in assets
                ),
            }
        )
    return rows


def _materialized_after(instance: DagsterInstance, graph, run, asset: str, storage_id: int) -> bool:
    """Whether `asset` was written after event `storage_id`: in each of `run`'s partitions, when
    the run was for partitions of a partitioned asset."""
    key = AssetKey.from_user_string(asset)
    partitions = _run_partitions(graph, run, key)
    if not partitions:
        records = instance.fetch_materializations(key, limit=1).records
        return bool(records) and records[0].storage_id > storage_id
    written: set[str] = set()
    cursor = None
    while True:  # every materialization of those partitions since the failure
        found = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=partitions, after_storage_id=storage_id),
            limit=1000,
            cursor=cursor,
        )
        written |= {record.partition_key for record in found.records}
        if not found.has_more:
            return written >= set(partitions)
        cursor = found.cursor


def _run_partitions(graph, run, key: AssetKey) -> list[str]:
    """The partitions of `key` that `run` was for (its partition, or its single-run range)."""
    tags = run.tags
    if not graph.has(key) or graph.get(key).partitions_def is None:
        return []
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start, end = (
        tags.get("dagster/asset_partition_range_start"),
        tags.get("dagster/asset_partition_range_end"),
    )
    if not (start and end):
        return []
    return graph.get(key).partitions_def.get_partition_keys_in_range(PartitionKeyRange(start, end))


def _run_error(instance: DagsterInstance, run_id: str) -> str:
    from crypto_assets.automation.alert_changes import first_error_line

    return first_error_line(instance, run_id) or "run failed"


def _model(instance: DagsterInstance, key: AssetKey, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": key.to_user_string(),
        "champion_version": None,
        "trained": None,
        "oos_auc": None,
    }
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=100).records
    if not records:
        return {**row, "last_training": "never"}
    newest = {k: v.value for k, v in records[0].asset_materialization.metadata.items()}
    row["last_training"] = f"{newest.get('promotion', '?')}: {newest.get('promotion_reason', '')}"
    champion = newest.get("champion_version")
    if champion is None and newest.get("promotion") == "promoted":
        champion = newest.get("model_version")
    row["champion_version"] = champion
    for record in records:  # the training that made the champion: its age and scores
        metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        if metadata.get("promotion") == "promoted" and metadata.get("model_version") == champion:
            trained = datetime.fromtimestamp(record.timestamp, UTC)
            row["trained"] = trained.isoformat(timespec="seconds")
            row["age"] = age_text((now - trained).total_seconds())
            row["oos_auc"] = metadata.get("oos_auc")
            break
    return row


def age_text(seconds: float) -> str:
    minutes = max(0, int(seconds // 60))
    if minutes < 120:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // 1440}d"
