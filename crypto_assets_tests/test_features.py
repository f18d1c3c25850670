"""Features: no look-ahead (prefix invariance), warm-up marking, values against plain pandas, and
the asset on both warehouses, where an incremental run equals a full recompute."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dagster import materialize

from crypto_assets.features.assets import build_features
from crypto_assets.features.indicators import FEATURE_COLUMNS, FLOAT_FEATURES, WARMUP_BARS, compute_features
from crypto_assets.market import Timeframe
from crypto_assets.resources import MarketResource, WarehouseResource
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.bulk import append_frame
from crypto_assets.warehouse.candles import upsert_candles
from crypto_assets.warehouse.schema import ensure_ingestion_tables

T0 = pd.Timestamp("2025-01-01", tz="UTC")
KEY = ["exchange", "symbol", "timeframe", "ts"]


def random_bars(n: int, seed: int, symbol: str, *, gaps: float = 0.02) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    spread = np.abs(rng.normal(0, 0.003, n))
    volume = rng.gamma(2.0, 10.0, n) * np.where(rng.random(n) < 0.02, 5.0, 1.0)
    frame = pd.DataFrame(
        {
            "exchange": "synthetic", "symbol": symbol, "timeframe": "15m",
            "ts": T0 + pd.to_timedelta(np.arange(n) * 900, unit="s"),
            "open": close * (1 + rng.normal(0, 0.001, n)), "high": close * (1 + spread),
            "low": close * (1 - spread), "close": close, "volume": volume,
        }
    )  # fmt: skip
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    frame["low"] = frame[["open", "low", "close"]].min(axis=1)
    keep = rng.random(n) >= gaps
    keep[0] = True
    return frame[keep].reset_index(drop=True)


def two_symbols(n: int = 3000) -> pd.DataFrame:
    return pd.concat([random_bars(n, 1, "BTC-USD"), random_bars(n - 500, 2, "ETH-USD")], ignore_index=True)


def test_features_at_t_do_not_depend_on_later_bars():
    bars = two_symbols()
    full = compute_features(bars).set_index(KEY)
    for cut in (150, 1200, 2499):
        end = T0 + pd.Timedelta(minutes=15 * cut)
        prefix = compute_features(bars[bars["ts"] <= end]).set_index(KEY)
        pd.testing.assert_frame_equal(prefix, full.loc[prefix.index])


def test_warmup_rows_are_marked_and_not_filled():
    features = compute_features(random_bars(400, 3, "BTC-USD", gaps=0))
    assert features["is_warmup"].tolist() == [True] * WARMUP_BARS + [False] * (400 - WARMUP_BARS)
    assert features["bar_number"].tolist() == list(range(400))
    assert features["rsi_14"].iloc[:14].isna().all() and features["rsi_14"].iloc[14:].notna().all()
    assert features["ret_48"].iloc[:48].isna().all() and features["ret_48"].iloc[48:].notna().all()
    assert features["macd_signal"].iloc[:33].isna().all()
    settled = features[~features["is_warmup"]]
    assert settled[FLOAT_FEATURES].notna().all().all()
    assert all(features[c].dtype == np.float32 for c in FLOAT_FEATURES)


def test_values_equal_plain_pandas_formulas():
    bars = random_bars(1500, 4, "SOL-USD", gaps=0)
    features = compute_features(bars)
    close, volume = bars["close"], bars["volume"]
    median = volume.rolling(48).median()
    rolling_high, rolling_low = bars["high"].rolling(48).max(), bars["low"].rolling(48).min()
    expected = {
        "ret_4": close / close.shift(4) - 1,
        "dist_sma_48": close / close.rolling(48).mean() - 1,
        "donchian_pos_48": (close - rolling_low) / (rolling_high - rolling_low),
        "drawdown_48": close / rolling_high - 1,
        "volume_z_48": (volume - volume.rolling(48).mean()) / volume.rolling(48).std(ddof=0),
        "realized_vol_48": np.log(close).diff().rolling(48).std(ddof=0),
        "volume_median_ratio": volume / median,
    }
    for name, values in expected.items():
        np.testing.assert_allclose(
            features[name], values.astype(np.float32), rtol=2e-5, atol=1e-6, err_msg=name
        )
    anomaly = (volume >= 3 * median).to_numpy()
    assert features["volume_anomaly"].tolist() == anomaly.tolist() and anomaly.sum() > 5
    assert features["hour_of_day"].tolist() == bars["ts"].dt.hour.tolist()
    assert features["day_of_week"].tolist() == bars["ts"].dt.dayofweek.tolist()


def test_volume_anomaly_is_three_times_the_rolling_median():
    bars = random_bars(60, 5, "BTC-USD", gaps=0).assign(volume=10.0)
    bars.loc[50, "volume"] = 30.0  # median of 48 bars with it is still 10: 3x, flagged
    bars.loc[55, "volume"] = 29.9
    features = compute_features(bars)
    assert features.index[features["volume_anomaly"]].tolist() == [50]


# --- the asset on both warehouses -------------------------------------------------------------------


def resample_1h(bars: pd.DataFrame, newest_closed: pd.Timestamp) -> pd.DataFrame:
    """What the dbt model ohlc_1h holds: buckets with their completeness and closed flags."""
    groups = bars.assign(bucket=bars["ts"].dt.floor("1h")).groupby(["exchange", "symbol", "bucket"])
    frame = groups.agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
        volume=("volume", "sum"), bar_count=("ts", "size"), newest=("ts", "max"),
    ).reset_index().rename(columns={"bucket": "ts"})  # fmt: skip
    frame["timeframe"] = "1h"
    frame["expected_bars"] = 4
    frame["is_complete"] = frame["bar_count"] == 4
    newest = frame.groupby("symbol")["newest"].transform("max")
    frame["is_closed"] = frame["ts"] + pd.Timedelta(hours=1) <= newest + pd.Timedelta(minutes=15)
    frame = frame[frame["ts"] <= newest_closed]
    return frame[
        [
            *KEY,
            "open",
            "high",
            "low",
            "close",
            "volume",
            "bar_count",
            "expected_bars",
            "is_complete",
            "is_closed",
        ]
    ]


OHLC_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    exchange VARCHAR, symbol VARCHAR, timeframe VARCHAR, ts TIMESTAMPTZ, open DOUBLE PRECISION,
    high DOUBLE PRECISION, low DOUBLE PRECISION, close DOUBLE PRECISION, volume DOUBLE PRECISION,
    bar_count BIGINT, expected_bars BIGINT, is_complete BOOLEAN, is_closed BOOLEAN
)
"""


def load(warehouse: Warehouse, bars: pd.DataFrame) -> pd.DataFrame:
    """Write base bars to raw_ohlc and rebuild ohlc_1h from them, as the dbt models would."""
    hourly = resample_1h(bars, bars["ts"].max())
    with warehouse.begin() as connection:
        ensure_ingestion_tables(connection)
        upsert_candles(connection, bars)
        for table in ("ohlc_1h", "ohlc_4h", "ohlc_1d"):  # the coarser two stay empty here
            connection.exec_driver_sql(OHLC_DDL.format(table=table))
        connection.exec_driver_sql("DELETE FROM ohlc_1h")
        append_frame(connection, hourly, "ohlc_1h")
    return hourly


def stored_features(warehouse: Warehouse) -> pd.DataFrame:
    frame = warehouse.query(f"SELECT {', '.join(FEATURE_COLUMNS)} FROM features")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    for column in FLOAT_FEATURES:
        frame[column] = frame[column].astype("float64")
    return frame.sort_values(KEY).reset_index(drop=True)


def run_features(warehouse_url: str, full: bool = False):
    result = materialize(
        [build_features(Timeframe.parse("15m"))],
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "market": MarketResource(symbols="BTC-USD,ETH-USD"),
        },
        run_config={"ops": {"features": {"config": {"full_refresh": full}}}},
    )
    assert result.success
    event = result.get_asset_materialization_events()[0]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def test_incremental_runs_equal_a_full_refresh_on_both_warehouses(warehouse_url: str, warehouse: Warehouse):
    everything = two_symbols(2200)
    first = everything[everything["ts"] < T0 + pd.Timedelta(minutes=15 * 1500) + pd.Timedelta(minutes=7)]
    hourly = load(warehouse, first)
    meta = run_features(warehouse_url)
    usable = hourly[hourly["is_complete"] & hourly["is_closed"]]
    assert meta["rows_written_by_timeframe"] == {"15m": len(first), "1h": len(usable), "4h": 0, "1d": 0}
    assert len(usable) < len(hourly)  # gaps make incomplete buckets; the newest may be open
    stored = stored_features(warehouse)
    pd.testing.assert_frame_equal(
        stored[stored["timeframe"] == "15m"].reset_index(drop=True),
        stored_features_frame(compute_features(first)),
    )
    # two more loads, each followed by an incremental run that writes only the new bars
    for end_bar in (1800, 2200):
        bars = everything[everything["ts"] < T0 + pd.Timedelta(minutes=15 * end_bar)]
        before = stored_features(warehouse)
        hourly = load(warehouse, bars)
        meta = run_features(warehouse_url)
        assert meta["mode"] == "incremental"
        new_base = (
            bars["ts"] > before[before["timeframe"] == "15m"]["ts"].max() - pd.Timedelta(hours=1)
        ).sum()
        assert 0 < meta["rows_written_by_timeframe"]["15m"] <= new_base
    incremental = stored_features(warehouse)
    run_features(warehouse_url, full=True)
    full = stored_features(warehouse)
    assert (
        len(full)
        == len(incremental)
        == len(everything) + int((hourly["is_complete"] & hourly["is_closed"]).sum())
    )
    exact = [c for c in FEATURE_COLUMNS if c not in FLOAT_FEATURES]
    pd.testing.assert_frame_equal(incremental[exact], full[exact])
    for column in FLOAT_FEATURES:  # recursive indicators agree to float32 precision
        np.testing.assert_allclose(incremental[column], full[column], rtol=1e-5, atol=1e-7, err_msg=column)


def stored_features_frame(features: pd.DataFrame) -> pd.DataFrame:
    frame = features.copy()
    frame["ts"] = frame["ts"].dt.as_unit("us")
    for column in FLOAT_FEATURES:
        frame[column] = frame[column].astype("float64")
    for column in ("bar_number", "hour_of_day", "day_of_week"):
        frame[column] = frame[column].astype("int64")
    return frame.sort_values(KEY).reset_index(drop=True)


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with np.errstate(all="ignore"):
        yield


def test_asset_specs_of_features_and_labels():
    from crypto_assets.labels.assets import build_label_assets

    [features_spec] = build_features(Timeframe.parse("15m")).specs
    assert features_spec.group_name == "features"
    assert {d.asset_key.to_user_string() for d in features_spec.deps} == {
        "raw_ohlc",
        "ohlc_1h",
        "ohlc_4h",
        "ohlc_1d",
    }
    [hourly_base] = build_features(Timeframe.parse("1h")).specs
    assert {d.asset_key.to_user_string() for d in hourly_base.deps} == {"raw_ohlc", "ohlc_4h", "ohlc_1d"}
    labels = {
        spec.key.to_user_string(): spec
        for a in build_label_assets(Timeframe.parse("15m"))
        for spec in a.specs
    }
    assert set(labels) == {"strategy_dca_labels", "strategy_swing_labels", "strategy_channel_labels"}
    for spec in labels.values():
        assert spec.group_name == "labels"
        assert {d.asset_key.to_user_string() for d in spec.deps} == {"raw_ohlc"}  # reads candles only
        assert "stop loss" in spec.description and "open" in spec.description
    for assets in (build_features(Timeframe.parse("15m")), *build_label_assets(Timeframe.parse("15m"))):
        assert assets.node_def.pools == {"warehouse_writes"}
