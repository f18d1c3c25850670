"""Strategy labels: each strategy on a small hand-made series with its expected rows written out,
prefix invariance of closed labels, and the label assets on both warehouses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dagster import materialize

from crypto_assets.labels.assets import build_label_assets
from crypto_assets.labels.strategies import LABEL_COLUMNS, ChannelParams, DcaParams, SwingParams, label_bars
from crypto_assets.market import Timeframe
from crypto_assets.resources import MarketResource, WarehouseResource
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.candles import upsert_candles
from crypto_assets.warehouse.schema import ensure_ingestion_tables
from crypto_assets_tests.reference_labels import assert_labels_recheck

T0 = pd.Timestamp("2025-01-01", tz="UTC")


def at(bar: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=15 * bar)


def hand_bars(rows: list[tuple], symbol: str = "BTC-USD") -> pd.DataFrame:
    """(high, low, close[, volume]) per 15m bar from 2025-01-01 00:00 UTC."""
    frame = pd.DataFrame(
        [r if len(r) == 4 else (*r, 1.0) for r in rows], columns=["high", "low", "close", "volume"]
    )
    frame.insert(0, "ts", [at(i) for i in range(len(rows))])
    frame.insert(0, "timeframe", "15m")
    frame.insert(0, "symbol", symbol)
    frame.insert(0, "exchange", "synthetic")
    frame["open"] = frame["close"]
    return frame


def expected(strategy: str, rows: list[tuple]) -> pd.DataFrame:
    """(entry bar, entry, take profit, stop loss, limit bar, exit bar, outcome, bars, return)."""
    return pd.DataFrame(
        [
            {
                "strategy": strategy, "exchange": "synthetic", "symbol": "BTC-USD", "timeframe": "15m",
                "entry_ts": at(e), "entry_price": price, "take_profit_price": tp, "stop_loss_price": sl,
                "time_limit_ts": at(limit), "exit_ts": at(exit_bar), "outcome": outcome,
                "label": int(outcome == "take_profit"), "bars_to_exit": bars, "realized_return": ret,
            }
            for e, price, tp, sl, limit, exit_bar, outcome, bars, ret in rows
        ]
    )[LABEL_COLUMNS]  # fmt: skip


def assert_labels_equal(actual: pd.DataFrame, wanted: pd.DataFrame) -> None:
    actual = actual.reset_index(drop=True)
    assert (
        actual[["entry_ts", "exit_ts", "time_limit_ts", "outcome", "label", "bars_to_exit"]]
        .astype(str)
        .equals(
            wanted[["entry_ts", "exit_ts", "time_limit_ts", "outcome", "label", "bars_to_exit"]].astype(str)
        )
    ), actual
    for column in ("entry_price", "take_profit_price", "stop_loss_price", "realized_return"):
        np.testing.assert_allclose(actual[column], wanted[column], rtol=1e-12, err_msg=column)


def test_dca_buys_dips_of_the_rolling_high():
    bars = hand_bars(
        [
            (100, 95, 98), (99, 94, 96),
            (92, 88, 89),  # 89 <= 90% of the 3-bar high 100: entry
            (94, 89, 93),  # high 94 >= 93.45: take profit
            (95, 90, 91),
            (91, 84, 85),  # 85 <= 85.5: entry
            (90, 80, 82),  # touches 89.25 and 80.75: stop loss (double touch); 82 <= 85.5: entry
            (84, 79, 83), (85, 80, 84),
            (86, 81, 85),  # time limit of the entry at bar 6: timeout at this close
            (87, 77, 78),  # entry, but its time limit is after the newest bar: open, not labelled
        ]
    )  # fmt: skip
    params = DcaParams(lookback_bars=3, drop_pct=10, take_profit_pct=5, stop_loss_pct=5, horizon_bars=3)
    wanted = expected(
        "dca",
        [
            (2, 89, 89 * 1.05, 89 * 0.95, 5, 3, "take_profit", 1, 0.05),
            (5, 85, 85 * 1.05, 85 * 0.95, 8, 6, "stop_loss", 1, -0.05),
            (6, 82, 82 * 1.05, 82 * 0.95, 9, 9, "timeout", 3, 85 / 82 - 1),
        ],
    )
    assert_labels_equal(label_bars("dca", bars, params, 900), wanted)


def test_swing_buys_breakouts_on_volume():
    bars = hand_bars(
        [
            (101, 99, 100, 10), (101, 99, 100, 10), (101, 99, 100, 10),
            (103, 100, 102, 20),  # above the prior high 101 on volume 20 > median 10: entry
            (104, 101, 103, 5),  # 103 is not above the prior high 103
            (107, 102, 106, 30),  # take profit of bar 3 (106.08); breakout on volume: entry
            (108, 105, 107, 8),
            (109, 103, 104, 9),  # low 103 <= 103.88: stop loss of bar 5
            (112, 104, 111, 4),  # breaks out, but volume 4 is below the median 9: no entry
            (115, 110, 114, 50),  # entry
            (116, 112, 115, 10), (117, 113, 116, 10),  # no touch: timeout at bar 11
            (120, 115, 119, 60),  # entry, still open
        ]
    )  # fmt: skip
    params = SwingParams(
        lookback_bars=3, volume_lookback_bars=3, take_profit_pct=4, stop_loss_pct=2, horizon_bars=2
    )
    wanted = expected(
        "swing",
        [
            (3, 102, 102 * 1.04, 102 * 0.98, 5, 5, "take_profit", 2, 0.04),
            (5, 106, 106 * 1.04, 106 * 0.98, 7, 7, "stop_loss", 2, -0.02),
            (9, 114, 114 * 1.04, 114 * 0.98, 11, 11, "timeout", 2, 116 / 114 - 1),
        ],
    )
    assert_labels_equal(label_bars("swing", bars, params, 900), wanted)


def test_channel_buys_the_bottom_band_of_a_ranging_channel():
    bars = hand_bars(
        [
            (110, 100, 105), (110, 100, 105), (110, 100, 105),
            (108, 100, 101),  # channel 100..110, bottom band <= 102.5: entry, take profit 107.5
            (107, 101, 106), (108, 102, 107),  # high 108: take profit
            (107, 99.5, 100),  # channel 99.5..108: entry, take profit 105.875, stop 98.505
            (106, 98, 99),  # touches both: stop loss; channel 98..108: entry (105.5 / 97.02)
            (104, 99, 103), (105, 100, 104),  # no touch: timeout at bar 9
            (104, 97.5, 98),  # entry, still open
        ]
    )  # fmt: skip
    params = ChannelParams(
        lookback_bars=4, band_fraction=0.25, adx_period=2, max_adx=101, stop_buffer_pct=1, horizon_bars=2
    )
    wanted = expected(
        "channel",
        [
            (3, 101, 107.5, 99.0, 5, 5, "take_profit", 2, 107.5 / 101 - 1),
            (6, 100, 105.875, 99.5 * 0.99, 8, 7, "stop_loss", 1, 99.5 * 0.99 / 100 - 1),
            (7, 99, 105.5, 98 * 0.99, 9, 9, "timeout", 2, 104 / 99 - 1),
        ],
    )
    assert_labels_equal(label_bars("channel", bars, params, 900), wanted)
    # a trending channel (ADX above the limit) gives no entry
    trending = ChannelParams(lookback_bars=4, band_fraction=0.25, adx_period=2, max_adx=0, horizon_bars=2)
    assert label_bars("channel", bars, trending, 900).empty


def random_bars(n: int, seed: int, symbol: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    spread = np.abs(rng.normal(0, 0.003, n)) + np.where(rng.random(n) < 0.03, 0.03, 0.0)
    frame = pd.DataFrame(
        {
            "exchange": "synthetic", "symbol": symbol, "timeframe": "15m",
            "ts": T0 + pd.to_timedelta(np.arange(n) * 900, unit="s"),
            "open": close, "high": close * (1 + spread), "low": close * (1 - spread), "close": close,
            "volume": rng.gamma(2.0, 10.0, n),
        }
    )  # fmt: skip
    return frame[rng.random(n) >= 0.03].reset_index(drop=True)  # a few gaps


@pytest.mark.parametrize(
    "strategy,params",
    [("dca", DcaParams(drop_pct=2.0)), ("swing", SwingParams()), ("channel", ChannelParams(max_adx=30.0))],
)
def test_closed_labels_do_not_change_when_more_bars_arrive(strategy, params):
    bars = pd.concat([random_bars(4000, 5, "BTC-USD"), random_bars(3000, 6, "ETH-USD")], ignore_index=True)
    full = label_bars(strategy, bars, params, 900)
    for cut in (1500, 2222, 2999):
        end = T0 + pd.Timedelta(minutes=15 * cut)
        prefix = label_bars(strategy, bars[bars["ts"] <= end], params, 900)
        assert len(prefix) > 10
        # every label of the prefix is final, and the full data labels exactly those entries with a
        # time limit inside the prefix (the others were open)
        newest = bars[bars["ts"] <= end].groupby("symbol")["ts"].max()
        closed_in_full = full[full["time_limit_ts"] <= full["symbol"].map(newest)]
        pd.testing.assert_frame_equal(prefix.reset_index(drop=True), closed_in_full.reset_index(drop=True))
        assert_labels_recheck(prefix, bars[bars["ts"] <= end])


def write_raw(url: str, bars: pd.DataFrame) -> None:
    db = Warehouse(url)
    with db.begin() as connection:
        ensure_ingestion_tables(connection)
        upsert_candles(connection, bars)
    db.dispose()


def test_label_assets_write_idempotently_on_both_warehouses(warehouse_url: str, warehouse: Warehouse):
    more = pd.concat([random_bars(2800, 7, "BTC-USD"), random_bars(2000, 8, "ETH-USD")], ignore_index=True)
    bars = more[more["ts"] < at(2500)]
    write_raw(warehouse_url, bars)
    assets = build_label_assets(Timeframe.parse("15m"))
    resources = {
        "warehouse": WarehouseResource(url=warehouse_url),
        "market": MarketResource(symbols="BTC-USD,ETH-USD"),
    }
    config = {"ops": {"strategy_dca_labels": {"config": {"drop_pct": 2.0}}}}
    first = materialize(assets, resources=resources, run_config=config, selection=[a.key for a in assets])
    assert first.success
    read = {}
    for strategy, params in (
        ("dca", DcaParams(drop_pct=2.0)),
        ("swing", SwingParams()),
        ("channel", ChannelParams()),
    ):
        stored = read_labels(warehouse, strategy)
        assert not stored.duplicated(["strategy", "exchange", "symbol", "timeframe", "entry_ts"]).any()
        pd.testing.assert_frame_equal(stored, normalized(label_bars(strategy, bars, params, 900)))
        read[strategy] = stored
    assert len(read["dca"]) > 50
    # more bars: open entries get labelled, closed ones are unchanged, nothing is duplicated
    write_raw(warehouse_url, more)
    assert materialize(assets, resources=resources, run_config=config).success
    assert materialize(assets, resources=resources, run_config=config).success  # a rerun changes nothing
    for strategy in ("dca", "swing", "channel"):
        stored = read_labels(warehouse, strategy)
        assert len(stored) >= len(read[strategy])
        kept = stored.merge(read[strategy][["symbol", "entry_ts"]], on=["symbol", "entry_ts"])
        pd.testing.assert_frame_equal(kept, read[strategy])
    assert_labels_recheck(read_labels(warehouse, "swing"), more)


def read_labels(warehouse: Warehouse, strategy: str) -> pd.DataFrame:
    return normalized(warehouse.query(f"SELECT * FROM strategy_{strategy}_labels"))


def normalized(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[LABEL_COLUMNS].copy()
    for column in ("entry_ts", "time_limit_ts", "exit_ts"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("us")
    for column in ("entry_price", "take_profit_price", "stop_loss_price", "realized_return"):
        frame[column] = frame[column].astype("float64")
    for column in ("label", "bars_to_exit"):
        frame[column] = frame[column].astype("int64")
    for column in ("strategy", "exchange", "symbol", "timeframe", "outcome"):
        frame[column] = frame[column].astype(str)
    return frame.sort_values(["symbol", "entry_ts"]).reset_index(drop=True)
