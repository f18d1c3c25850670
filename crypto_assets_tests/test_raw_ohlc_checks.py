"""Checks of stored candles: a Great Expectations suite that blocks, gaps and outliers that warn."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from dagster import AssetKey, asset, materialize

from crypto_assets.ingestion.checks import (
    OUTLIER_SIGMAS,
    build_raw_ohlc_checks,
    check_window,
    find_gaps,
    find_outlier_moves,
)
from crypto_assets.market import Timeframe
from crypto_assets.resources import CandleSourceResource, MarketResource, WarehouseResource
from crypto_assets.warehouse import Warehouse
from crypto_assets_tests.helpers import RAW_OHLC, SIX

CHECKS = build_raw_ohlc_checks(RAW_OHLC, Timeframe.parse("15m"))


@asset(deps=[RAW_OHLC], partitions_def=RAW_OHLC.partitions_def)
def downstream_of_raw() -> None:
    """Stands in for the models that read raw_ohlc."""


class ClockedMarket(MarketResource):
    """The market as seen at a fixed time (ISO-8601, UTC)."""

    at: str

    def now(self) -> datetime:
        return datetime.fromisoformat(self.at)


def run(warehouse_url: str, day: str, at: str | None = None):
    market = ClockedMarket(symbols=SIX, timeframe="15m", at=at) if at else MarketResource(symbols=SIX)
    return materialize(
        [RAW_OHLC, *CHECKS, downstream_of_raw],
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "source": CandleSourceResource(spec="synthetic"),
            "market": market,
        },
        partition_key=day,
        raise_on_error=False,
    )


def evaluations(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_clean_candles_pass_every_check(warehouse_url: str):
    result = run(warehouse_url, "2025-03-04", at="2025-03-05T00:01:00+00:00")
    assert result.success
    found = evaluations(result)
    assert {name: e.passed for name, e in found.items()} == {
        "symbol_coverage": True,
        "symbol_freshness": True,
        "expectation_suite": True,
        "gaps": True,
        "outlier_moves": True,
    }
    assert found["expectation_suite"].metadata["rows"].value == 6 * 96
    assert [m.partition for m in result.get_asset_materialization_events()] == ["2025-03-04"] * 2


def test_a_bad_candle_written_behind_our_back_blocks_downstream(warehouse_url: str):
    assert run(warehouse_url, "2025-03-04").success
    with Warehouse(warehouse_url) as db, db.begin() as connection:  # another writer, bypassing validation
        connection.exec_driver_sql(
            "INSERT INTO raw_ohlc VALUES ('synthetic', 'BTC-USD', '15m', '2025-03-04 10:07:00+00', "
            "100, 99, 95, 105, -1, '2025-03-05 00:00:00+00')"
        )
    result = run(warehouse_url, "2025-03-04")
    assert not result.success
    check = evaluations(result)["expectation_suite"]
    assert not check.passed and check.severity.value == "ERROR"
    for broken in ["high", "volume", "grid_offset_s"]:
        assert broken in check.description
    # the offending row is sampled into the metadata by its symbol and bar time
    assert "BTC-USD 2025-03-04T10:07:00+00:00" in check.metadata["expectations"].value
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert AssetKey("downstream_of_raw") not in materialized


def test_a_symbol_that_stops_updating_is_named_until_it_recovers(warehouse_url: str):
    """A backfill of an old day makes Dagster's freshness look fine; the per-symbol check does not."""
    assert evaluations(run(warehouse_url, "2025-03-04", at="2025-03-04T12:01:00+00:00"))[
        "symbol_freshness"
    ].passed
    with Warehouse(warehouse_url) as db, db.begin() as connection:  # SOL-USD stopped updating at 09:00
        connection.exec_driver_sql(
            "DELETE FROM raw_ohlc WHERE symbol = 'SOL-USD' AND ts >= '2025-03-04 09:00:00+00'"
        )
    # the next scheduled load, at 12:16, brings 12:00 for the others but nothing new for SOL-USD
    # (the synthetic source refills it, so this day is loaded for the others only)
    result = materialize(
        [RAW_OHLC, *CHECKS],
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "source": CandleSourceResource(spec="synthetic"),
            "market": ClockedMarket(symbols=SIX, timeframe="15m", at="2025-03-04T12:16:00+00:00"),
        },
        partition_key="2025-03-04",
        run_config={
            "ops": {"raw_ohlc": {"config": {"symbols": [s for s in SIX.split(",") if s != "SOL-USD"]}}}
        },
    )
    stale = evaluations(result)["symbol_freshness"]
    assert not stale.passed and stale.severity.value == "WARN"
    assert stale.description == "stale: SOL-USD (196 min old)"  # bar 08:45 closed at 09:00
    assert stale.metadata["stale_symbols"].value == "SOL-USD"
    recovered = run(warehouse_url, "2025-03-04", at="2025-03-04T12:31:00+00:00")
    assert evaluations(recovered)["symbol_freshness"].passed


def test_gaps_are_listed_with_their_length():
    ts = pd.date_range("2025-03-04", periods=10, freq="15min", tz="UTC").delete([3, 4, 7])
    candles = pd.DataFrame({"exchange": "x", "symbol": "BTC-USD", "ts": ts})
    gaps = find_gaps(candles, 900)
    assert list(gaps["missing_bars"]) == [2, 1]
    assert gaps["after"][0] == "2025-03-04T00:30:00+00:00"


def test_a_ten_percent_jump_in_a_quiet_market_is_flagged():
    moves = np.random.default_rng(3).normal(0, 0.002, 200)
    moves[120] = np.log(1.10)
    close = 100 * np.exp(np.cumsum(moves))
    ts = pd.date_range("2025-03-04", periods=200, freq="15min", tz="UTC")
    candles = pd.DataFrame({"exchange": "x", "symbol": "BTC-USD", "ts": ts, "close": close})
    flagged = find_outlier_moves(candles)
    assert list(flagged["ts"]) == [ts[120].isoformat()]


def test_gaps_and_outliers_are_reported_from_the_warehouse(warehouse_url: str):
    assert run(warehouse_url, "2025-03-04").success
    with Warehouse(warehouse_url) as db, db.begin() as connection:
        connection.exec_driver_sql(
            "DELETE FROM raw_ohlc WHERE symbol = 'ETH-USD' AND ts >= '2025-03-04 06:00:00+00' "
            "AND ts < '2025-03-04 06:45:00+00'"
        )
        connection.exec_driver_sql(
            "UPDATE raw_ohlc SET close = close * 1.5, high = high * 1.5 "
            "WHERE symbol = 'SOL-USD' AND ts = '2025-03-04 12:00:00+00'"
        )
    db = Warehouse(warehouse_url)
    try:  # the checks alone, on what is stored now
        start = datetime(2025, 3, 4, tzinfo=UTC)
        selected = {"gaps", "outlier_moves"}
        found = {r.check_name: r for r in check_window(db, "15m", 900, start, start + timedelta(1), selected)}
    finally:
        db.dispose()
    assert set(found) == selected
    assert found["gaps"].description == "3 bars missing in 1 gap(s)"
    assert re.search(r"ETH-USD +\| 2025-03-04T05:45:00\+00:00", found["gaps"].metadata["gaps"].value)
    flagged = found["outlier_moves"]
    assert flagged.metadata["flagged_count"].value == 2  # the jump up and the fall back
    assert re.search(r"SOL-USD +\| 2025-03-04T12:00:00\+00:00", flagged.metadata["flagged"].value)


def reference_gaps(candles: pd.DataFrame, seconds: int) -> list[tuple]:
    """The plain per-symbol loop the vectorized version replaces."""
    rows = []
    for (exchange, symbol), bars in candles.groupby(["exchange", "symbol"]):
        ts = sorted(bars["ts"])
        for before, after in zip(ts, ts[1:], strict=False):
            step = (after - before).total_seconds()
            if step > seconds:
                missing = int(step // seconds) - 1
                rows.append((exchange, symbol, before.isoformat(), after.isoformat(), missing))
    return rows


def reference_outliers(candles: pd.DataFrame, sigmas: float) -> list[tuple]:
    rows = []
    for (exchange, symbol), bars in candles.groupby(["exchange", "symbol"]):
        bars = bars.sort_values("ts")
        moves = pd.Series(np.diff(np.log(bars["close"].to_numpy())), index=bars["ts"].iloc[1:])
        median = moves.median()
        scale = 1.4826 * (moves - median).abs().median()
        if len(moves) < 20 or scale == 0:
            continue
        z = (moves - median) / scale
        hits = z[z.abs() > sigmas]
        rows += [(exchange, symbol, t.isoformat(), round(float(v), 1)) for t, v in hits.items()]
    return rows


def test_vectorized_gaps_and_outliers_match_the_per_symbol_loop():
    rng = np.random.default_rng(11)
    frames = []
    for i, symbol in enumerate(["AAA-USD", "BBB-USD", "CCC-USD", "DDD-USD"]):
        ts = pd.date_range("2025-03-04", periods=300 + 7 * i, freq="15min", tz="UTC")
        moves = rng.standard_t(3, len(ts)) * 0.003
        moves[rng.integers(0, len(ts), 3)] = rng.choice([-0.2, 0.2], 3)
        keep = rng.random(len(ts)) > 0.05  # about one bar in twenty missing
        close = 100 * np.exp(np.cumsum(moves))
        frames.append(pd.DataFrame({"exchange": "x", "symbol": symbol, "ts": ts, "close": close})[keep])
    candles = pd.concat(frames).sample(frac=1, random_state=3)  # stored order is no order
    gaps = find_gaps(candles, 900)
    assert list(gaps.itertuples(index=False, name=None)) == reference_gaps(candles, 900)
    assert len(gaps) > 20
    flagged = find_outlier_moves(candles)
    got = [(r.exchange, r.symbol, r.ts, r.robust_z) for r in flagged.itertuples()]
    assert got == reference_outliers(candles, OUTLIER_SIGMAS)
    assert len(got) >= 8


def test_a_bar_without_a_symbol_is_no_part_of_another_series():
    """The suite blocks such a bar; gaps must not read it as a later bar of a real series."""
    ts = pd.date_range("2025-03-04", periods=3, freq="15min", tz="UTC")
    candles = pd.DataFrame(
        {
            "exchange": ["a", "a", "a", "b", "b", "b", "b"],
            "symbol": ["x", "y", "y", "x", "x", "x", None],
            "ts": [ts[0], ts[0], ts[1], *ts, ts[0] + pd.Timedelta(hours=2)],
        }
    )
    for frame in (candles, candles.astype({"exchange": "category", "symbol": "category"})):
        assert find_gaps(frame, 900).empty
