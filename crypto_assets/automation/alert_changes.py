"""What changed since the alerts sensor last looked, read from what Dagster already records.

Each function takes the state the sensor remembered (part of its cursor) and returns the alerts
for what changed plus the new state, so a state that persists is reported once:
- freshness: the daemon's freshness state per asset (FAIL is stale, PASS is fresh; WARN keeps
  the previous level, so an asset hovering around its warn window does not flap);
- runs: run-failure events after a storage cursor (runs Dagster will retry are skipped);
- models: model materializations after a storage id per model whose `promotion` is promoted or
  refused.
Checks have their own module (crypto_assets.automation.alert_checks): their state is per partition.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance

Alert = dict[str, Any]

STALE, FRESH = "stale", "fresh"
FAILED = "failed"
WILL_RETRY_TAG = "dagster/will_retry"
RUN_BATCH = 100


def alert(kind: str, state: str, subject: str, text: str, **details: Any) -> Alert:
    """An alert as it is queued, logged and sent as JSON."""
    return {
        "source": "crypto_assets",
        "kind": kind,
        "state": state,
        "subject": subject,
        "text": text,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "details": {k: v for k, v in details.items() if v is not None},
    }


def freshness_changes(
    instance: DagsterInstance, policies: Mapping[AssetKey, Any], known: Mapping[str, str]
) -> tuple[list[Alert], dict[str, str]]:
    """Assets that went stale or recovered. `policies` maps each asset to its freshness policy."""
    records = instance.get_freshness_state_records(list(policies))
    alerts, levels = [], dict(known)
    for key, record in records.items():
        name = key.to_user_string()
        state = record.freshness_state.value
        level = STALE if state == "FAIL" else FRESH if state == "PASS" else None
        if level is None or level == known.get(name, FRESH):
            continue
        levels[name] = level
        last = _last_materialized(instance, key)
        window = getattr(policies[key], "fail_window", None)
        allowed = f"; allowed {_duration(window.to_timedelta().total_seconds())}" if window else ""
        if level == STALE:
            text = f"{name} is stale: last materialized {last}{allowed}"
            alerts.append(alert("asset_stale", STALE, name, text, last_materialized=last))
        else:
            text = f"{name} is fresh again: materialized {last}"
            alerts.append(alert("asset_recovered", "recovered", name, text, last_materialized=last))
    return alerts, levels


def run_failures(instance: DagsterInstance, cursor: str | None) -> tuple[list[Alert], str | None]:
    """Failed runs recorded after `cursor` (None: start from now, reporting nothing old), oldest
    first and at most RUN_BATCH per look: the cursor is the newest failure read, so a backlog is
    read over several ticks."""
    if cursor is None:
        newest = instance.fetch_run_status_changes(DagsterEventType.RUN_FAILURE, limit=1)
        return [], newest.cursor if newest.records else ""
    batch = instance.fetch_run_status_changes(
        DagsterEventType.RUN_FAILURE, limit=RUN_BATCH, cursor=cursor or None, ascending=True
    )
    alerts = []
    for record in batch.records:
        run = instance.get_run_by_id(record.event_log_entry.run_id)
        if run is not None and run.tags.get(WILL_RETRY_TAG, "").lower() != "true":
            alerts.append(_run_failed(instance, run, record.event_log_entry))
    return alerts, batch.cursor if batch.records else cursor


def model_changes(
    instance: DagsterInstance, models: Iterable[AssetKey], known: Mapping[str, int]
) -> tuple[list[Alert], dict[str, int]]:
    """Promotions and refusals recorded by each model asset after the storage id `known` has for
    it (a model not in `known` starts from now). Returns the alerts and, per model, the storage id
    of the newest materialization read: a record that lands while this runs is read next time."""
    positions, start = dict(known), None
    alerts = []
    for key in models:
        name = key.to_user_string()
        if name not in known:  # from the newest record of any kind: nothing old is reported
            start = start if start is not None else instance.event_log_storage.get_maximum_record_id() or 0
            positions[name] = start
            continue
        while True:
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=key, after_storage_id=positions[name]),
                limit=RUN_BATCH,
                ascending=True,
            ).records
            alerts += [found for record in records if (found := _promotion(name, record)) is not None]
            if records:
                positions[name] = records[-1].storage_id
            if len(records) < RUN_BATCH:
                break
    return alerts, positions


def _promotion(name: str, record) -> Alert | None:
    metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    promotion = metadata.get("promotion")
    if promotion not in ("promoted", "refused"):
        return None
    version, champion = metadata.get("model_version"), metadata.get("champion_version")
    reason = metadata.get("promotion_reason", "")
    if promotion == "promoted":
        text = f"{name}: version {version} is the new champion ({reason})"
    else:
        stays = f"champion stays version {champion}" if champion else "no champion"
        text = f"{name}: version {version} not promoted, {stays}: {reason}"
    return alert(
        f"model_{promotion}", promotion, name, text, version=version, champion_version=champion,
        auc=metadata.get("oos_auc"), run_id=record.run_id,
    )  # fmt: skip


def _run_failed(instance: DagsterInstance, run, failure_entry) -> Alert:
    assets = unmaterialized_assets(instance, run.run_id)
    checks = sorted(key.to_user_string() for key in (run.asset_check_selection or ()))
    step, error = _failed_step(instance, run.run_id)
    if error is None:
        error = failure_entry.dagster_event.message if failure_entry.dagster_event else "run failed"
    partition = run.tags.get("dagster/partition")
    start, end = (
        run.tags.get("dagster/asset_partition_range_start"),
        run.tags.get("dagster/asset_partition_range_end"),
    )
    if partition is None and start:
        partition = start if start == end else f"{start}..{end}"
    symbols = _symbols(run.run_config)
    what = ", ".join(assets or checks) or run.job_name
    parts = [f"run {run.run_id[:8]} ({run.job_name}) failed: {what}"]
    if partition:
        parts.append(f"partition {partition}")
    if symbols:
        parts.append(f"symbols {', '.join(symbols)}")
    text = "; ".join(parts) + f": {first_line(error)}"
    return alert(
        "run_failed", FAILED, what, text, run_id=run.run_id, job=run.job_name, assets=assets or None,
        step=step, partition=partition, symbols=symbols or None, error=first_line(error),
    )  # fmt: skip


def unmaterialized_assets(instance: DagsterInstance, run_id: str) -> list[str]:
    """The assets the run planned and did not materialize (all it planned if it wrote them all)."""
    planned, done = set(), set()
    kinds = {DagsterEventType.ASSET_MATERIALIZATION_PLANNED, DagsterEventType.ASSET_MATERIALIZATION}
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        if event is not None and event.asset_key is not None:
            target = planned if event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED else done
            target.add(event.asset_key.to_user_string())
    return sorted(planned - done or planned)


def _failed_step(instance: DagsterInstance, run_id: str) -> tuple[str | None, str | None]:
    """The first failed step of the run and its error: the user code's, not Dagster's wrapper."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        data = entry.dagster_event.step_failure_data if entry.dagster_event else None
        error = data.error if data else None
        while error is not None and error.cause is not None and error.cls_name.startswith("Dagster"):
            error = error.cause
        if error is not None:
            return entry.step_key, error.message
    return None, None


def first_error_line(instance: DagsterInstance, run_id: str) -> str | None:
    """The first line of the error that failed the run, if a step failed."""
    _, error = _failed_step(instance, run_id)
    return first_line(error) if error else None


def _symbols(run_config: Mapping[str, Any]) -> list[str]:
    ops = run_config.get("ops", {}) if run_config else {}
    for op_config in ops.values():
        symbols = (op_config or {}).get("config", {}).get("symbols")
        if symbols:
            return list(symbols)
    return []


def _last_materialized(instance: DagsterInstance, key: AssetKey) -> str:
    entry = instance.get_latest_materialization_event(key)
    if entry is None:
        return "never"
    ago = datetime.now(UTC).timestamp() - entry.timestamp
    when = datetime.fromtimestamp(entry.timestamp, UTC)
    return f"{when:%Y-%m-%d %H:%M} UTC ({_duration(ago)} ago)"


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} d {minutes % 1440 // 60} h"


def first_line(text: str | None) -> str:
    """The first non-empty line, without the module path of an exception's class."""
    for line in (text or "").splitlines():
        if line.strip():
            return re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", line.strip())[:300]
    return ""
