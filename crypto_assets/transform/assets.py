"""The dbt models as Dagster assets: group "transform", downstream of raw_ohlc.

- one `@dbt_assets` multi-asset built from the manifest prepared for the base timeframe
  (crypto_assets.transform.project.DbtSetup); dbt tests become asset checks on their models;
- the dbt source `warehouse.raw_ohlc` is the Dagster asset `raw_ohlc`, so the UI shows
  raw_ohlc -> ohlc_1h, ohlc_4h, ohlc_1d, ohlc_today, ohlc_recent;
- each model rebuilds when raw_ohlc gets new data (declarative automation, evaluated by the
  `transform_automation` sensor), in the `warehouse_writes` pool like every warehouse writer;
- `full_refresh` in run config, or the run tag `crypto_assets/dbt_full_refresh=true`, runs
  `dbt build --full-refresh` (rebuilds the incremental resampled models from scratch).

Importing this module imports dagster_dbt (which imports dbt-core): only definitions.py does.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    Config,
    DefaultSensorStatus,
    Failure,
    MaterializeResult,
    Output,
)
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from pydantic import Field

from crypto_assets.automation.conditions import REBUILD_ON_UPSTREAM_UPDATE
from crypto_assets.names import TRANSFORM_GROUP, WAREHOUSE_POOL
from crypto_assets.prerequisites import require_tables
from crypto_assets.resources import WarehouseResource
from crypto_assets.transform.project import DbtSetup

RAW_OHLC = AssetKey("raw_ohlc")
FULL_REFRESH_TAG = "crypto_assets/dbt_full_refresh"
AUTOMATION_SENSOR = "transform_automation"


class DbtBuildConfig(Config):
    full_refresh: bool = Field(
        default=False,
        description="Run `dbt build --full-refresh`: rebuild the incremental resampled models from scratch.",
    )


class TransformTranslator(DagsterDbtTranslator):
    """dbt source warehouse.raw_ohlc -> AssetKey("raw_ohlc"); models in group "transform"."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source" and dbt_resource_props["name"] == "raw_ohlc":
            return RAW_OHLC
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return TRANSFORM_GROUP

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> AutomationCondition | None:
        return REBUILD_ON_UPSTREAM_UPDATE if dbt_resource_props["resource_type"] == "model" else None


@dataclass
class Transform:
    """What the transform domain adds to the Definitions."""

    assets: list[AssetsDefinition]
    sensors: list[AutomationConditionSensorDefinition]
    resources: dict = field(default_factory=dict)


def build_transform(setup: DbtSetup, warehouse_url: str) -> Transform:
    """The dbt assets of `setup`'s base timeframe, preparing the manifest first if it is missing or
    stale (normally done at install time; see crypto_assets.transform.project)."""
    manifest = setup.prepare_manifest(warehouse_url)

    @dbt_assets(
        manifest=manifest,
        project=setup.dbt_project(),
        dagster_dbt_translator=TransformTranslator(),
        name="transform_dbt",
        pool=WAREHOUSE_POOL,
    )
    def transform_dbt(
        context: AssetExecutionContext,
        config: DbtBuildConfig,
        dbt: DbtCliResource,
        warehouse: WarehouseResource,
    ) -> Iterator[Output | MaterializeResult | AssetCheckResult]:
        with warehouse.open() as db:  # reachable, and dbt's source exists
            require_tables(db, "raw_ohlc")
        args = ["build", "--full-refresh"] if wants_full_refresh(config, context.run.tags) else ["build"]
        context.log.info(f"dbt {' '.join(setup.with_vars(args))} on {db.describe()}")
        with setup.invoke(dbt, args, context=context, warehouse_url=warehouse.url) as invocation:
            # Events are collected and released when dbt has exited: on DuckDB the warehouse file
            # is dbt's until then, and the row counts are read after it.
            events = list(invocation.stream())
        yield from _with_row_counts(context, events, warehouse)
        setup.prune_invocations()
        if not invocation.is_successful():
            raise Failure(description=_failure_summary(invocation))

    sensor = AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=[transform_dbt],
        # On by default: the promise of the models is that they follow raw_ohlc without anyone
        # launching them. It only evaluates conditions (cheap) and launches a run after raw_ohlc
        # changed; the runs wait for the warehouse_writes slot, so they never collide with a load.
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Rebuilds the dbt models after raw_ohlc gets new candles.",
    )
    return Transform(assets=[transform_dbt], sensors=[sensor], resources={"dbt": setup.dbt_resource()})


def wants_full_refresh(config: DbtBuildConfig, tags: Mapping[str, str]) -> bool:
    """Run config `full_refresh: true`, or the run tag crypto_assets/dbt_full_refresh=true (handy
    from the UI's "Materialize" dialog or a backfill's tags)."""
    return config.full_refresh or tags.get(FULL_REFRESH_TAG, "").strip().lower() in ("true", "1", "yes")


def _with_row_counts(
    context: AssetExecutionContext, events: list, warehouse: WarehouseResource
) -> Iterator[Output | MaterializeResult | AssetCheckResult]:
    tables = {
        event.output_name: context.asset_key_for_output(event.output_name).path[-1]
        for event in events
        if isinstance(event, Output)
    }
    counts: dict[str, int] = {}
    if tables:
        with warehouse.open() as db:
            for output_name, table in tables.items():
                counts[output_name] = int(db.query(f'SELECT count(*) AS n FROM "{table}"')["n"].iloc[0])
    for event in events:
        if isinstance(event, Output) and event.output_name in counts:
            event = event.with_metadata({**event.metadata, "dagster/row_count": counts[event.output_name]})
        yield event


def _failure_summary(invocation) -> str:
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    except Exception:  # no artifact when dbt failed before running anything
        return "dbt build failed before running any node: see the step's dbt log for the cause"
    nodes = invocation.manifest.get("nodes", {})
    failed = []
    for result in results:
        if result["status"] not in ("error", "fail", "runtime error"):
            continue
        node = nodes.get(result["unique_id"], {})
        name = node.get("name") or result["unique_id"]
        attached = (node.get("attached_node") or "").rsplit(".", 1)[-1]
        message = (result.get("message") or "").strip().splitlines()
        reason = message[0][:160] if message else result["status"]
        failed.append(f"{attached + '.' if attached else ''}{name} ({reason})")
    return "dbt build failed: " + ("; ".join(failed) or "see the step's dbt log")
