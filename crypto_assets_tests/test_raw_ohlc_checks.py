"""Checks of stored candles: a Great Expectations suite that blocks, gaps and outliers that warn."""

from __future__ import annotations

import numpy as np
import pandas as pd
from dagster import AssetKey, asset, materialize

from crypto_assets.ingestion.checks import build_raw_ohlc_checks, find_gaps, find_outlier_moves
from crypto_assets.resources import CandleSourceResource, MarketResource, WarehouseResource
from crypto_assets.warehouse import Warehouse
from crypto_assets_tests.helpers import RAW_OHLC, SIX

CHECKS = build_raw_ohlc_checks(RAW_OHLC)


@asset(deps=[RAW_OHLC], partitions_def=RAW_OHLC.partitions_def)
def downstream_of_raw() -> None:
    """Stands in for the models that read raw_ohlc."""


def run(warehouse_url: str, day: str):
    return materialize(
        [RAW_OHLC, *CHECKS, downstream_of_raw],
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "source": CandleSourceResource(spec="synthetic"),
            "market": MarketResource(symbols=SIX, timeframe="15m"),
        },
        partition_key=day,
        raise_on_error=False,
    )


def evaluations(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_clean_candles_pass_every_check(warehouse_url: str):
    result = run(warehouse_url, "2025-03-04")
    assert result.success
    found = evaluations(result)
    assert {name: e.passed for name, e in found.items()} == {
        "symbol_coverage": True,
        "raw_ohlc_expectations": True,
        "raw_ohlc_gaps": True,
        "raw_ohlc_outlier_moves": True,
    }
    assert found["raw_ohlc_expectations"].metadata["rows"].value == 6 * 96
    assert [m.partition for m in result.get_asset_materialization_events()] == ["2025-03-04"] * 2


def test_a_bad_candle_written_behind_our_back_blocks_downstream(warehouse_url: str):
    assert run(warehouse_url, "2025-03-04").success
    with Warehouse(warehouse_url).begin() as connection:  # another writer, bypassing validation
        connection.exec_driver_sql(
            "INSERT INTO raw_ohlc VALUES ('synthetic', 'BTC-USD', '15m', '2025-03-04 10:07:00+00', "
            "100, 99, 95, 105, -1, '2025-03-05 00:00:00+00')"
        )
    result = run(warehouse_url, "2025-03-04")
    assert not result.success
    check = evaluations(result)["raw_ohlc_expectations"]
    assert not check.passed and check.severity.value == "ERROR"
    for broken in ["high", "volume", "grid_offset_s"]:
        assert broken in check.description
    materialized = {m.asset_key for m in result.get_asset_materialization_events()}
    assert AssetKey("downstream_of_raw") not in materialized


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
