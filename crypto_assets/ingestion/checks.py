"""Asset checks of the stored candles, over the partitions a run wrote.

`raw_ohlc_expectations` is a Great Expectations 1.x suite and blocking: candles that break
it (bad OHLC relations, negative volume, duplicate keys, off-grid timestamps, nulls or a
changed schema) stop downstream assets in the same run. Validation normally quarantines such
rows before they are stored; this guards the table against every other writer.
Gaps and outlier moves are facts of real markets, so those checks only warn.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    MetadataValue,
    asset_check,
)

from crypto_assets.names import WAREHOUSE_POOL
from crypto_assets.resources import MarketResource, WarehouseResource
from crypto_assets.warehouse.schema import KEY_COLUMNS, VALUE_COLUMNS

OUTLIER_SIGMAS = 12.0  # a bar move this many robust standard deviations from the symbol's norm
MAX_LISTED = 20


def load_window(
    warehouse: WarehouseResource, context: AssetCheckExecutionContext, timeframe: str
) -> pd.DataFrame:
    window = context.op_execution_context.partition_time_window
    return warehouse.open().query(
        "SELECT * FROM raw_ohlc WHERE timeframe = :tf AND ts >= :start AND ts < :end",
        {"tf": timeframe, "start": window.start, "end": window.end},
    )


def expectation_suite(timeframe_seconds: int):
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


def run_expectations(candles: pd.DataFrame, timeframe_seconds: int) -> list[dict]:
    """One dict per expectation: what it checks, whether it held, how many rows broke it."""
    import great_expectations as gx

    frame = candles.copy()
    epoch_s = (pd.to_datetime(frame["ts"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    frame["grid_offset_s"] = epoch_s.astype("int64") % timeframe_seconds
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("warehouse")
        .add_dataframe_asset("raw_ohlc")
        .add_batch_definition_whole_dataframe("run window")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    validation = batch.validate(expectation_suite(timeframe_seconds))
    outcomes = []
    for result in validation.results:
        config = result.expectation_config
        kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}
        outcomes.append(
            {
                "expectation": config.type,
                "on": ", ".join(str(v) for v in kwargs.values())[:80],
                "success": bool(result.success),
                "unexpected": int(result.result.get("unexpected_count") or 0),
            }
        )
    return outcomes


def find_gaps(candles: pd.DataFrame, timeframe_seconds: int) -> pd.DataFrame:
    """Runs of missing bars between a symbol's first and last stored bar in the window."""
    rows = []
    for (exchange, symbol), bars in candles.groupby(["exchange", "symbol"]):
        ts = pd.to_datetime(bars["ts"], utc=True).sort_values()
        step = ts.diff().dt.total_seconds()
        for before, after, seconds in zip(ts.shift(1)[step > timeframe_seconds], ts[step > timeframe_seconds],
                                          step[step > timeframe_seconds], strict=True):  # fmt: skip
            rows.append(
                {"exchange": exchange, "symbol": symbol, "after": before.isoformat(),
                 "resumes": after.isoformat(), "missing_bars": int(seconds // timeframe_seconds) - 1}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["exchange", "symbol", "after", "resumes", "missing_bars"])


def find_outlier_moves(candles: pd.DataFrame, sigmas: float = OUTLIER_SIGMAS) -> pd.DataFrame:
    """Bars whose close-to-close log move is `sigmas` robust deviations (MAD) from the symbol's median."""
    flagged = []
    for (exchange, symbol), bars in candles.groupby(["exchange", "symbol"]):
        bars = bars.sort_values("ts")
        moves = np.log(bars["close"].to_numpy(dtype=float))
        moves = pd.Series(np.diff(moves), index=bars["ts"].iloc[1:])
        if len(moves) < 20:
            continue
        median = moves.median()
        scale = 1.4826 * (moves - median).abs().median()
        if scale == 0:
            continue
        z = (moves - median) / scale
        for ts, score in z[z.abs() > sigmas].items():
            flagged.append({"exchange": exchange, "symbol": symbol, "ts": pd.Timestamp(ts).isoformat(),
                            "move": float(moves[ts]), "robust_z": round(float(score), 1)})  # fmt: skip
    return pd.DataFrame(flagged, columns=["exchange", "symbol", "ts", "move", "robust_z"])


def _table(frame: pd.DataFrame) -> MetadataValue:
    return MetadataValue.md(frame.head(MAX_LISTED).to_markdown(index=False) if len(frame) else "none")


def build_raw_ohlc_checks(raw_ohlc: AssetsDefinition) -> Sequence[AssetChecksDefinition]:
    """The checks run in the warehouse pool too: on DuckDB even a reader cannot open the file
    while a dbt build (a step that may run beside them) holds it."""
    partitions = raw_ohlc.partitions_def

    @asset_check(
        asset=raw_ohlc, blocking=True, partitions_def=partitions, pool=WAREHOUSE_POOL, description=__doc__
    )
    def raw_ohlc_expectations(
        context: AssetCheckExecutionContext, warehouse: WarehouseResource, market: MarketResource
    ) -> AssetCheckResult:
        timeframe = market.base_timeframe
        candles = load_window(warehouse, context, timeframe.name)
        outcomes = pd.DataFrame(run_expectations(candles, timeframe.seconds))
        failed = outcomes[~outcomes["success"]]
        return AssetCheckResult(
            passed=failed.empty,
            severity=AssetCheckSeverity.ERROR,
            description="all expectations met"
            if failed.empty
            else "failed: "
            + "; ".join(f"{r.expectation}({r.on}) x{r.unexpected}" for r in failed.itertuples()),
            metadata={"rows": len(candles), "expectations": _table(outcomes)},
        )

    @asset_check(
        asset=raw_ohlc,
        partitions_def=partitions,
        pool=WAREHOUSE_POOL,
        description="Missing bars inside the stored range.",
    )
    def raw_ohlc_gaps(
        context: AssetCheckExecutionContext, warehouse: WarehouseResource, market: MarketResource
    ) -> AssetCheckResult:
        timeframe = market.base_timeframe
        gaps = find_gaps(load_window(warehouse, context, timeframe.name), timeframe.seconds)
        return AssetCheckResult(
            passed=gaps.empty,
            severity=AssetCheckSeverity.WARN,
            description="no gaps"
            if gaps.empty
            else f"{int(gaps['missing_bars'].sum())} bars missing in {len(gaps)} gap(s)",
            metadata={"gaps": _table(gaps), "gap_count": len(gaps)},
        )

    @asset_check(
        asset=raw_ohlc,
        partitions_def=partitions,
        pool=WAREHOUSE_POOL,
        description=f"Close-to-close moves beyond {OUTLIER_SIGMAS:g} robust deviations, for review.",
    )
    def raw_ohlc_outlier_moves(
        context: AssetCheckExecutionContext, warehouse: WarehouseResource, market: MarketResource
    ) -> AssetCheckResult:
        flagged = find_outlier_moves(load_window(warehouse, context, market.base_timeframe.name))
        return AssetCheckResult(
            passed=flagged.empty,
            severity=AssetCheckSeverity.WARN,
            description="no outlier moves" if flagged.empty else f"{len(flagged)} outlier move(s) flagged",
            metadata={"flagged": _table(flagged), "flagged_count": len(flagged)},
        )

    return [raw_ohlc_expectations, raw_ohlc_gaps, raw_ohlc_outlier_moves]
