"""The raw_ohlc asset: base-timeframe candles of every configured symbol, one UTC day per partition."""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    Failure,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from crypto_assets.ingestion.partitions import daily_partitions
from crypto_assets.market import Timeframe, parse_symbols
from crypto_assets.names import INGESTION_GROUP, WAREHOUSE_POOL
from crypto_assets.quiet import quietly
from crypto_assets.resources import CandleSourceResource, MarketResource, WarehouseResource
from crypto_assets.warehouse.coverage import window_coverage

if TYPE_CHECKING:
    from crypto_assets.ingestion.load import LoadReport

COVERAGE_CHECK = "symbol_coverage"


class RawOhlcConfig(Config):
    symbols: list[str] | None = Field(
        default=None,
        description="Load only these symbols (e.g. to backfill a new one); all configured ones when empty.",
    )


def build_raw_ohlc(start: date, timeframe: Timeframe) -> AssetsDefinition:
    """raw_ohlc with daily partitions from `start`, expected fresh within a few `timeframe` bars."""

    @quietly(  # single-run backfills and partitioned check specs are Dagster beta/preview
        asset,
        name="raw_ohlc",
        group_name=INGESTION_GROUP,
        partitions_def=daily_partitions(start),
        backfill_policy=BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        kinds={"python", "sql"},
        freshness_policy=FreshnessPolicy.time_window(
            warn_window=2 * timeframe.delta + timedelta(minutes=5),
            fail_window=4 * timeframe.delta + timedelta(minutes=5),
        ),
        check_specs=[
            AssetCheckSpec(
                COVERAGE_CHECK,
                asset="raw_ohlc",
                description="Every requested symbol has every closed bar of the loaded days.",
            )
        ],
        description=(
            "Candles of the base timeframe for every configured symbol, keyed on "
            "(exchange, symbol, timeframe, ts) with ts the UTC bar-open time. Each daily "
            "partition is written all-or-nothing: days holding no bar yet are appended together "
            "in one transaction, each day that holds bars is upserted in its own; rejected rows "
            "go to ohlc_quarantine with their reason."
        ),
    )
    def raw_ohlc(
        context: AssetExecutionContext,
        config: RawOhlcConfig,
        warehouse: WarehouseResource,
        source: CandleSourceResource,
        market: MarketResource,
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        from crypto_assets.ingestion.load import load_window  # pandas and pyarrow: not at code load

        known = market.symbol_list
        symbols = parse_symbols(config.symbols) if config.symbols else known
        unknown = [s for s in symbols if s not in known]
        if unknown:
            raise Failure(
                f"symbols {', '.join(unknown)} are not configured: add them to "
                "CRYPTO_ASSETS_SYMBOLS before loading them"
            )
        window = context.partition_time_window
        base = market.base_timeframe
        db = warehouse.open()
        candle_source = source.open()
        now = market.now()
        context.log.info(
            f"loading {len(symbols)} symbol(s) {window.start:%Y-%m-%d}..{window.end:%Y-%m-%d} "
            f"from {source.spec} into {db.describe()}"
        )
        try:
            report = load_window(
                db,
                candle_source,
                symbols=symbols,
                known_symbols=known,
                timeframe=base,
                start=window.start,
                end=window.end,
                now=now,
                run_id=context.run.run_id,
                on_write=lambda days, c: context.log.info(
                    f"{days} written: {c.inserted} inserted, {c.updated} updated, "
                    f"{c.unchanged} unchanged, {c.quarantined} quarantined"
                ),
            )
            coverage = window_coverage(
                db,
                exchange=candle_source.exchange,
                symbols=symbols,
                timeframe=base,
                start=window.start,
                end=window.end,
                now=now,
            )
        finally:
            db.dispose()  # a DuckDB object alive at exit is reported as leaked
        yield MaterializeResult(metadata=_metadata(report, coverage))
        yield _coverage_result(coverage, report.failures)
        if report.failures:
            raise Failure(
                description="; ".join(report.failures.values())
                + f" (the other {len(symbols) - len(report.failures)} symbol(s) were stored)",
                metadata={"failed_symbols": ", ".join(report.failures)},
            )

    return raw_ohlc


def _metadata(report: "LoadReport", coverage) -> dict:
    per_symbol = report.per_symbol.merge(coverage[["symbol", "present", "expected"]], how="left", on="symbol")
    return {
        "rows_in": report.rows_in,
        "inserted": report.counts.inserted,
        "updated": report.counts.updated,
        "unchanged": report.counts.unchanged,
        "merged_duplicates": report.merged,
        "quarantined": report.counts.quarantined,
        "reconciles": report.reconciles(),
        "quarantine_reasons": MetadataValue.json(report.quarantine_reasons),
        "per_symbol": MetadataValue.md(per_symbol.to_markdown(index=False)),
        "failed_symbols": MetadataValue.json(report.failures),
        "dagster/row_count": report.stored,
    }


def _coverage_result(coverage, failures: dict[str, str]) -> AssetCheckResult:
    lacking = coverage[coverage["missing"] > 0]
    empty = coverage[coverage["present"] == 0]
    names = sorted(set(lacking["symbol"]) | set(failures))
    severity = AssetCheckSeverity.ERROR if failures or len(empty) else AssetCheckSeverity.WARN
    description = (
        "all symbols complete"
        if not names
        else "lacking bars: "
        + ", ".join(f"{row.symbol} ({row.present}/{row.expected})" for row in lacking.itertuples())
        + ("; failed: " + ", ".join(failures) if failures else "")
    )
    return AssetCheckResult(
        check_name=COVERAGE_CHECK,
        passed=not names,
        severity=severity,
        description=description,
        metadata={
            "lacking_symbols": ", ".join(names) if names else "none",
            "coverage": MetadataValue.md(coverage.to_markdown(index=False)),
        },
    )
