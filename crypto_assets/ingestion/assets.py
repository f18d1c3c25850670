"""The raw_ohlc asset: base-timeframe candles of every configured symbol, one UTC day per partition."""

from collections.abc import Iterator
from datetime import date, datetime, timedelta
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
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from crypto_assets.automation.freshness import raw_ohlc_freshness, raw_ohlc_stale_after
from crypto_assets.ingestion.partitions import daily_partitions
from crypto_assets.market import Timeframe, parse_symbols
from crypto_assets.names import INGESTION_GROUP, WAREHOUSE_POOL
from crypto_assets.quiet import quietly
from crypto_assets.resources import CandleSourceResource, MarketResource, WarehouseResource
from crypto_assets.warehouse.coverage import newest_bars, window_coverage
from crypto_assets.warehouse.gaps import settle_unfillable

if TYPE_CHECKING:
    from crypto_assets.ingestion.load import LoadReport

COVERAGE_CHECK = "symbol_coverage"
SYMBOL_FRESHNESS_CHECK = "symbol_freshness"


class RawOhlcConfig(Config):
    symbols: list[str] | None = Field(
        default=None,
        description="Load only these symbols (e.g. to backfill a new one); all configured ones when empty.",
    )
    repair: bool = Field(
        default=False,
        description=(
            "A gap repair run: record the holes the source returned nothing for in "
            "ohlc_unfillable_gaps, so they are not requested again until cleared."
        ),
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
        freshness_policy=raw_ohlc_freshness(timeframe),
        check_specs=[
            AssetCheckSpec(
                COVERAGE_CHECK,
                asset="raw_ohlc",
                description="Every requested symbol has every closed bar of the loaded days.",
            ),
            AssetCheckSpec(
                SYMBOL_FRESHNESS_CHECK,
                asset="raw_ohlc",
                description=(
                    "Every configured symbol's newest closed bar closed at most "
                    f"{_minutes(raw_ohlc_stale_after(timeframe))} ago (raw_ohlc's freshness window, "
                    "per symbol). Dagster's freshness policy is per asset and a backfill of an old "
                    "day makes it look fresh; this is not."
                ),
            ),
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
        candle_source = source.open()
        now = market.now()
        with warehouse.open() as db:
            context.log.info(
                f"loading {len(symbols)} symbol(s) {window.start:%Y-%m-%d}..{window.end:%Y-%m-%d} "
                f"from {source.spec} into {db.describe()}"
            )
            report = load_window(
                db,
                candle_source,
                symbols=symbols,
                known_symbols=known,
                timeframe=timeframe,
                start=window.start,
                end=window.end,
                now=now,
                run_id=context.run.run_id,
                on_write=lambda days, c: context.log.info(
                    f"{days} written: {c.inserted} inserted, {c.updated} updated, "
                    f"{c.unchanged} unchanged, {c.quarantined} quarantined"
                ),
            )
            holes_left = settle_unfillable(
                db, exchange=candle_source.exchange, timeframe=timeframe,
                symbols=[s for s in symbols if s not in report.failures], start=window.start,
                end=window.end, tried_at=now, run_id=context.run.run_id, record=config.repair,
            )  # fmt: skip
            if config.repair:
                context.log.info(
                    "gap repair: "
                    + ("every hole filled" if not holes_left else "recorded as unfillable: ")
                    + "; ".join(hole.describe() for hole in holes_left)
                )
            newest = newest_bars(
                db, exchange=candle_source.exchange, symbols=known, timeframe=timeframe, now=now
            )
            coverage = window_coverage(
                db,
                exchange=candle_source.exchange,
                symbols=symbols,
                timeframe=timeframe,
                start=window.start,
                end=window.end,
                now=now,
            )
        yield MaterializeResult(metadata=_metadata(report, coverage))
        yield _coverage_result(coverage, report.failures)
        yield _freshness_result(newest, timeframe, now)
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


def _freshness_result(newest: dict, timeframe: Timeframe, now: datetime) -> AssetCheckResult:
    """Which symbols' newest closed bar closed longer ago than raw_ohlc may be stale."""
    allowed = raw_ohlc_stale_after(timeframe)
    rows, stale = [], []
    for symbol, bar in newest.items():
        age = now - (bar + timeframe.delta) if bar is not None else None  # since the bar closed
        if age is None or age > allowed:
            stale.append(f"{symbol} ({_minutes(age)} old)" if age is not None else f"{symbol} (no bar)")
        rows.append(
            f"| {symbol} | {bar:%Y-%m-%d %H:%M} | {_minutes(age)} |" if bar else f"| {symbol} | none | |"
        )
    table = "| symbol | newest bar (UTC) | age |\n|---|---|---|\n" + "\n".join(rows)
    return AssetCheckResult(
        check_name=SYMBOL_FRESHNESS_CHECK,
        passed=not stale,
        severity=AssetCheckSeverity.WARN,
        description=f"stale: {', '.join(stale)}" if stale else f"every symbol within {_minutes(allowed)}",
        metadata={
            "stale_symbols": ", ".join(s.split(" ")[0] for s in stale) or "none",
            "newest": MetadataValue.md(table),
        },
    )


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"


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
