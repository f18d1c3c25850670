"""Helpers of the dbt tests: raw bars written straight into raw_ohlc, the dbt assets run through
Dagster, and the pandas reference the models are compared with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from dagster import AssetCheckEvaluation, DagsterInstance, ExecuteInProcessResult, materialize

from crypto_assets.ingestion.sources.synthetic import SyntheticSource
from crypto_assets.market import Timeframe
from crypto_assets.resources import WarehouseResource
from crypto_assets.transform.assets import Transform
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.candles import upsert_candles
from crypto_assets.warehouse.schema import ensure_ingestion_tables

BASE = Timeframe.parse("15m")
RESAMPLED = {"ohlc_1h": 3600, "ohlc_4h": 4 * 3600, "ohlc_1d": 86400}
WINDOWS = {"ohlc_today": 24, "ohlc_recent": 24 * 7}
RESAMPLED_COLUMNS = [
    "exchange", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume",
    "bar_count", "expected_bars", "is_complete", "is_closed",
]  # fmt: skip
WINDOW_COLUMNS = ["exchange", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume", "as_of"]
KEY = ["exchange", "symbol", "timeframe", "ts"]


def synthetic_bars(
    symbol: str, start: str, end: str, *, exchange: str = "synthetic", timeframe: Timeframe = BASE
) -> pd.DataFrame:
    """Closed synthetic bars of `symbol` with open time in [start, end), as raw_ohlc rows."""
    first, last = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    source = SyntheticSource(now=datetime(2030, 1, 1, tzinfo=UTC))
    frame = source.fetch([symbol], timeframe, first.to_pydatetime(), last.to_pydatetime()).frame
    frame = frame.assign(exchange=exchange, timeframe=timeframe.name)
    return frame[KEY + ["open", "high", "low", "close", "volume"]].reset_index(drop=True)


def write_bars(warehouse: Warehouse, bars: pd.DataFrame, *, loaded_at: datetime | None = None) -> None:
    """Upsert `bars` into raw_ohlc (no validation: tests also write bars validation would reject).
    With `loaded_at`, those rows are stamped as written at that time (an old load)."""
    with warehouse.begin() as connection:
        ensure_ingestion_tables(connection)
        upsert_candles(connection, bars)
        if loaded_at is not None:
            keys = bars[["exchange", "symbol", "timeframe"]].drop_duplicates()
            for row in keys.itertuples(index=False):
                connection.execute(
                    sa.text(
                        "UPDATE raw_ohlc SET loaded_at = :at WHERE exchange = :e AND symbol = :s "
                        "AND timeframe = :tf AND ts >= :first AND ts <= :last"
                    ),
                    {
                        "at": loaded_at, "e": row.exchange, "s": row.symbol, "tf": row.timeframe,
                        "first": bars["ts"].min().to_pydatetime(), "last": bars["ts"].max().to_pydatetime(),
                    },
                )  # fmt: skip


def raw_bars(warehouse: Warehouse) -> pd.DataFrame:
    frame = warehouse.query(
        "SELECT exchange, symbol, timeframe, ts, open, high, low, close, volume FROM raw_ohlc"
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def build_models(
    transform: Transform,
    warehouse_url: str,
    *,
    full_refresh: bool = False,
    instance: DagsterInstance | None = None,
) -> ExecuteInProcessResult:
    """One run of the dbt assets, as Dagster runs them (real resources, real dbt)."""
    return materialize(
        transform.assets,
        resources={"warehouse": WarehouseResource(url=warehouse_url), **transform.resources},
        run_config={"ops": {"transform_dbt": {"config": {"full_refresh": full_refresh}}}},
        instance=instance,
        raise_on_error=False,
    )


def checks_by_key(result: ExecuteInProcessResult) -> dict[tuple[str, str], AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def read_model(warehouse: Warehouse, table: str, columns: Sequence[str]) -> pd.DataFrame:
    frame = warehouse.query(f"SELECT {', '.join(columns)} FROM {table}")
    return normalize(frame, columns)


def normalize(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    frame = frame[list(columns)].copy()
    for column in ("ts", "as_of"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    for column in ("open", "high", "low", "close", "volume"):
        if column in frame:
            frame[column] = frame[column].astype("float64")
    for column in ("bar_count", "expected_bars"):
        if column in frame:
            frame[column] = frame[column].astype("int64")
    for column in ("is_complete", "is_closed"):
        if column in frame:
            frame[column] = frame[column].astype(bool)
    for column in ("exchange", "symbol", "timeframe"):
        frame[column] = frame[column].astype(str)
    return frame.sort_values(KEY).reset_index(drop=True)


def pandas_resample(raw: pd.DataFrame, name: str, seconds: int, base: Timeframe = BASE) -> pd.DataFrame:
    """The reference: pandas' own resample of each (exchange, symbol)'s base bars, buckets aligned
    on the Unix epoch (UTC), empty buckets dropped, flags computed from first principles."""
    bars = raw[raw["timeframe"] == base.name]
    expected = seconds // base.seconds
    parts = []
    for (exchange, symbol), group in bars.groupby(["exchange", "symbol"]):
        series = group.set_index("ts").sort_index()
        buckets = series.resample(f"{seconds}s", origin="epoch", label="left", closed="left")
        out = pd.DataFrame(
            {
                "open": buckets["open"].first(),
                "high": buckets["high"].max(),
                "low": buckets["low"].min(),
                "close": buckets["close"].last(),
                "volume": buckets["volume"].sum(),
                "bar_count": buckets["open"].count(),
            }
        )
        out = out[out["bar_count"] > 0]
        newest = series.index.max()
        out["expected_bars"] = expected
        out["is_complete"] = out["bar_count"] == expected
        out["is_closed"] = out.index + timedelta(seconds=seconds) <= newest + base.delta
        out = out.rename_axis("ts").reset_index()
        out["exchange"], out["symbol"], out["timeframe"] = exchange, symbol, name.removeprefix("ohlc_")
        parts.append(out)
    return normalize(pd.concat(parts), RESAMPLED_COLUMNS)


def pandas_window(raw: pd.DataFrame, hours: int, base: Timeframe = BASE) -> pd.DataFrame:
    """Base bars with ts > (newest ts of their exchange+symbol) - hours."""
    bars = raw[raw["timeframe"] == base.name].copy()
    bars["as_of"] = bars.groupby(["exchange", "symbol"])["ts"].transform("max")
    window = bars[bars["ts"] > bars["as_of"] - pd.Timedelta(hours=hours)]
    return normalize(window, WINDOW_COLUMNS)


def assert_frames_equal(actual: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    assert len(actual) == len(expected), f"{what}: {len(actual)} rows, expected {len(expected)}"
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-12, obj=what)
