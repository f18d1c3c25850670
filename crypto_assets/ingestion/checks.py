"""Asset checks of the stored candles, over the partitions a run wrote.

`expectation_suite` is a Great Expectations 1.x suite and blocking: candles that break
it (bad OHLC relations, negative volume, duplicate keys, off-grid timestamps, nulls or a
changed schema) stop downstream assets in the same run. Validation normally quarantines such
rows before they are stored; this guards the table against every other writer.
Gaps and outlier moves are facts of real markets, so those checks only warn.

The three checks are one step over one bulk read of the window (Arrow on DuckDB, binary COPY on
PostgreSQL): the suite validates that frame, and gaps and outlier moves are computed on its
arrays ordered once by symbol and time (crypto_assets.ingestion.bar_series: numpy passes, no
Python work per bar). Metadata lists a sample of the offending rows.
"""

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetsDefinition,
    MetadataValue,
    multi_asset_check,
)

from crypto_assets.ingestion.bar_series import (
    OUTLIER_SIGMAS,
    SortedBars,
    epoch_micros,
    find_gaps,
    find_outlier_moves,
)
from crypto_assets.market import Timeframe
from crypto_assets.names import WAREHOUSE_POOL
from crypto_assets.quiet import quietly
from crypto_assets.resources import WarehouseResource
from crypto_assets.warehouse.schema import KEY_COLUMNS, VALUE_COLUMNS

if TYPE_CHECKING:  # pandas, numpy and Great Expectations load when a check runs
    import numpy as np
    import pandas as pd

    from crypto_assets.warehouse import Warehouse

EXPECTATIONS_CHECK = "expectation_suite"
GAPS_CHECK = "gaps"
OUTLIERS_CHECK = "outlier_moves"
MAX_LISTED = 20
_STRINGS = ("exchange", "symbol", "timeframe")


def read_window(warehouse: "Warehouse", timeframe: str, start, end) -> "pd.DataFrame":
    """Every stored column of the window's candles, in one bulk read; the key's strings as
    categories (Great Expectations filters the frame once per expectation: integer codes are
    cheap to filter, strings are not)."""
    import pyarrow as pa

    from crypto_assets.warehouse.frames import read_arrow

    query = "SELECT * FROM raw_ohlc WHERE timeframe = :tf AND ts >= :start AND ts < :end"
    with warehouse.read() as connection:
        table = read_arrow(
            connection, query, {"tf": timeframe, "start": start, "end": end}, timestamps=["ts", "loaded_at"]
        )
    columns = {
        name: column.dictionary_encode() if name in _STRINGS and pa.types.is_string(column.type) else column
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    return pa.table(columns).to_pandas()


def expectation_suite():
    import great_expectations as gx

    expect = gx.expectations
    suite = gx.ExpectationSuite(name="raw_ohlc")
    for expectation in [
        expect.ExpectTableColumnsToMatchSet(
            column_set=[*KEY_COLUMNS, *VALUE_COLUMNS, "loaded_at", "grid_offset_s"]  # + derived below
        ),
        *[expect.ExpectColumnValuesToNotBeNull(column=c) for c in [*KEY_COLUMNS, *VALUE_COLUMNS]],
        expect.ExpectColumnPairValuesAToBeGreaterThanB(column_A="high", column_B="open", or_equal=True),
        expect.ExpectColumnPairValuesAToBeGreaterThanB(column_A="high", column_B="close", or_equal=True),
        expect.ExpectColumnPairValuesAToBeGreaterThanB(column_A="open", column_B="low", or_equal=True),
        expect.ExpectColumnPairValuesAToBeGreaterThanB(column_A="close", column_B="low", or_equal=True),
        expect.ExpectColumnValuesToBeBetween(column="low", min_value=0, strict_min=True),
        expect.ExpectColumnValuesToBeBetween(column="volume", min_value=0),
        expect.ExpectCompoundColumnsToBeUnique(column_list=KEY_COLUMNS),
        # seconds past the bar grid: 0 for every aligned bar-open time
        expect.ExpectColumnValuesToBeBetween(column="grid_offset_s", min_value=0, max_value=0),
    ]:
        suite.add_expectation(expectation)
    return suite


def _quiet_context():
    """An ephemeral Great Expectations context without progress bars or usage statistics."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


@contextmanager
def _no_frame_fingerprint() -> Iterator[None]:
    """Great Expectations fingerprints every in-memory frame under `HASH_THRESHOLD` bytes (an md5
    over pandas' hash of every row) for the batch markers of its results, which these checks never
    read: at 1.5M bars a quarter of the suite's time. A threshold of 0 skips it while the suite
    runs; the validation itself is the same."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    if not hasattr(engine, "HASH_THRESHOLD"):  # another Great Expectations: leave it as it is
        yield
        return
    threshold, engine.HASH_THRESHOLD = engine.HASH_THRESHOLD, 0
    try:
        yield
    finally:
        engine.HASH_THRESHOLD = threshold


def run_expectations(candles: "pd.DataFrame", timeframe_seconds: int) -> list[dict]:
    """One dict per expectation: what it checks, whether it held, how many rows broke it and
    the key of a few of them."""
    import great_expectations as gx

    frame = candles.copy(deep=False)
    frame["grid_offset_s"] = grid_offsets(frame["ts"], timeframe_seconds)
    context = _quiet_context()
    batch = (
        context.data_sources.add_pandas("warehouse")
        .add_dataframe_asset("raw_ohlc")
        .add_batch_definition_whole_dataframe("run window")
    )
    # a validation definition builds the batch once (batch.validate() builds it twice)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="raw_ohlc", data=batch, suite=context.suites.add(expectation_suite()))
    )
    result_format = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": 3,
        "unexpected_index_column_names": ["symbol", "ts"],
    }
    with _no_frame_fingerprint():
        validation = definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)
    outcomes = []
    for result in validation.results:
        config = result.expectation_config
        kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}
        sample = result.result.get("partial_unexpected_index_list") or []
        outcomes.append(
            {
                "expectation": config.type,
                "on": ", ".join(str(v) for v in kwargs.values())[:80],
                "success": bool(result.success),
                "unexpected": int(result.result.get("unexpected_count") or 0),
                "sample": "; ".join(_describe_row(row) for row in sample[:3]),
            }
        )
    return outcomes


def _describe_row(row) -> str:
    if not isinstance(row, dict):
        return str(row)
    return " ".join(v.isoformat() if hasattr(v, "isoformat") else str(v) for v in row.values())


def grid_offsets(ts: "pd.Series", timeframe_seconds: int) -> "np.ndarray":
    """Seconds past the bar grid (0 when aligned), exact to the microsecond."""
    return (epoch_micros(ts) % (timeframe_seconds * 1_000_000)) / 1e6


def _table(frame: "pd.DataFrame") -> MetadataValue:
    return MetadataValue.md(frame.head(MAX_LISTED).to_markdown(index=False) if len(frame) else "none")


def expectations_result(outcomes: list[dict], rows: int) -> AssetCheckResult:
    import pandas as pd

    outcomes_frame = pd.DataFrame(outcomes)
    failed = outcomes_frame[~outcomes_frame["success"]]
    return AssetCheckResult(
        check_name=EXPECTATIONS_CHECK,
        passed=failed.empty,
        severity=AssetCheckSeverity.ERROR,
        description="all expectations met"
        if failed.empty
        else "failed: " + "; ".join(f"{r.expectation}({r.on}) x{r.unexpected}" for r in failed.itertuples()),
        metadata={"rows": rows, "expectations": _table(outcomes_frame)},
    )


def gaps_result(gaps: "pd.DataFrame", unfillable: "pd.DataFrame | None" = None) -> AssetCheckResult:
    """Gaps of the window; `unfillable`: the holes in it a gap repair run could not fill."""
    recorded = 0 if unfillable is None else len(unfillable)
    metadata = {"gaps": _table(gaps), "gap_count": len(gaps), "unfillable_count": recorded}
    if unfillable is not None:
        metadata["unfillable"] = _table(unfillable.drop(columns=["exchange", "timeframe"], errors="ignore"))
    return AssetCheckResult(
        check_name=GAPS_CHECK,
        passed=gaps.empty,
        severity=AssetCheckSeverity.WARN,
        description="no gaps"
        if gaps.empty
        else f"{int(gaps['missing_bars'].sum())} bars missing in {len(gaps)} gap(s)"
        + (f", {recorded} recorded as unfillable by the source (crypto-assets gaps)" if recorded else ""),
        metadata=metadata,
    )


def outliers_result(flagged: "pd.DataFrame") -> AssetCheckResult:
    return AssetCheckResult(
        check_name=OUTLIERS_CHECK,
        passed=flagged.empty,
        severity=AssetCheckSeverity.WARN,
        description="no outlier moves" if flagged.empty else f"{len(flagged)} outlier move(s) flagged",
        metadata={"flagged": _table(flagged), "flagged_count": len(flagged)},
    )


def check_window(
    warehouse: "Warehouse", timeframe: str, timeframe_seconds: int, start, end, selected: set[str]
) -> Iterator[AssetCheckResult]:
    """The results of the `selected` checks on the candles of [start, end)."""
    candles = read_window(warehouse, timeframe, start, end)
    bars = SortedBars.of(candles) if selected & {GAPS_CHECK, OUTLIERS_CHECK} else None  # once for both
    if EXPECTATIONS_CHECK in selected:
        yield expectations_result(run_expectations(candles, timeframe_seconds), len(candles))
    if GAPS_CHECK in selected:
        from crypto_assets.warehouse.gaps import read_unfillable

        with warehouse.read() as connection:
            unfillable = read_unfillable(connection, timeframe=timeframe, start=start, end=end)
        yield gaps_result(find_gaps(candles, timeframe_seconds, bars=bars), unfillable)
    if OUTLIERS_CHECK in selected:
        yield outliers_result(find_outlier_moves(candles, bars=bars))


def build_raw_ohlc_checks(
    raw_ohlc: AssetsDefinition, timeframe: Timeframe
) -> Sequence[AssetChecksDefinition]:
    """The checks of raw_ohlc's `timeframe` candles. They run in the warehouse pool too: on DuckDB
    even a reader cannot open the file while a dbt build (a step that may run beside them) holds it."""
    partitions = raw_ohlc.partitions_def  # partitioned checks: a Dagster preview
    specs = [
        quietly(
            AssetCheckSpec, EXPECTATIONS_CHECK, asset=raw_ohlc.key, blocking=True,
            partitions_def=partitions, description=__doc__.split("\n\n")[1],
        ),
        quietly(
            AssetCheckSpec, GAPS_CHECK, asset=raw_ohlc.key, partitions_def=partitions,
            description="Missing bars inside the stored range.",
        ),
        quietly(
            AssetCheckSpec, OUTLIERS_CHECK, asset=raw_ohlc.key, partitions_def=partitions,
            description=f"Close-to-close moves beyond {OUTLIER_SIGMAS:g} robust deviations, for review.",
        ),
    ]  # fmt: skip

    @multi_asset_check(
        name="raw_ohlc_checks",
        specs=specs,
        can_subset=True,
        pool=WAREHOUSE_POOL,
        description="The stored candles of the run's partitions: one read, three checks.",
    )
    def raw_ohlc_checks(
        context: AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[AssetCheckResult]:
        window = context.op_execution_context.partition_time_window
        selected = {key.name for key in context.selected_asset_check_keys}
        with warehouse.open() as db:
            yield from check_window(db, timeframe.name, timeframe.seconds, window.start, window.end, selected)

    return [raw_ohlc_checks]
