"""GraphQL the end-to-end test sends to the Dagster webserver, as the UI would, and small readers of
the answers (test_production_e2e)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

LOCATION = "crypto_assets"
REPOSITORY = "__repository__"  # the repository name Dagster gives a `Definitions` object

RUNS = """
{ runsOrError(limit: 500) { __typename ... on Runs { results { runId status jobName tags { key value } } } } }
"""
STEP_FAILURES = """
query ($id: ID!) {
  logsForRun(runId: $id) {
    ... on EventConnection { events { ... on ExecutionStepFailureEvent { stepKey error { message } } } }
  }
}
"""
ASSETS = """
{
  assetNodes {
    assetKey { path }
    groupName
    assetMaterializations(limit: 1) { runId timestamp }
    assetChecksOrError {
      ... on AssetChecks { checks { name executionForLatestMaterialization { status runId } } }
    }
  }
}
"""
CHECK_EXECUTIONS = """
query ($key: AssetKeyInput!, $name: String!, $partition: String) {
  assetCheckExecutions(assetKey: $key, checkName: $name, partition: $partition, limit: 5) {
    runId status partition
  }
}
"""
BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
# What the UI's "Test schedule" does: evaluate the schedule (in the code server) at a tick...
SCHEDULE_DRY_RUN = """
mutation ($selector: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) {
    __typename
    ... on DryRunInstigationTick {
      evaluationResult {
        runRequests { runKey jobName runConfigYaml tags { key value } }
        skipReason
        error { message }
      }
    }
    ... on PythonError { message }
  }
}
"""
# ... and then "Launch all": the run requests it returned, queued for the daemon to launch.
LAUNCH_RUNS = """
mutation ($params: [ExecutionParams!]!) {
  launchMultipleRuns(executionParamsList: $params) {
    __typename
    ... on LaunchMultipleRunsResult {
      launchMultipleRunsResult {
        __typename
        ... on LaunchRunSuccess { run { runId } }
        ... on PythonError { message }
      }
    }
    ... on PythonError { message }
  }
}
"""
AUTOMATION = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        schedules { name scheduleState { status } }
        sensors {
          name
          sensorState { status ticks(limit: 1) { status skipReason error { message } } }
        }
      }
    }
  }
}
"""


def post(port: int, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `data` of a GraphQL answer; an answer with errors fails the test."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": text, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert not body.get("errors"), body["errors"]
    return body["data"]


def key_of(node: dict[str, Any]) -> str:
    return "/".join(node["assetKey"]["path"])


def newest_materialization(node: dict[str, Any]) -> float:
    """Timestamp (ms) of the asset's newest materialization, 0 when it has none."""
    materializations = node["assetMaterializations"]
    return float(materializations[0]["timestamp"]) if materializations else 0.0


def tags_of(run: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run.get("tags", [])}
