"""CcxtSource against a real local HTTP server that speaks Binance's spot API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from crypto_assets.errors import UserError
from crypto_assets.ingestion.sources.base import FRAME_COLUMNS, empty_frame
from crypto_assets.ingestion.sources.ccxt_exchange import CcxtSource
from crypto_assets.market import Timeframe
from crypto_assets_tests.fake_exchange import FakeBinance

NOW = datetime(2025, 9, 22, 12, 7, tzinfo=UTC)  # the 12:00 bar is still forming
DAY = datetime(2025, 9, 22, tzinfo=UTC)
TF = Timeframe.parse("15m")
LIMIT = 8  # bars per request: a page spans 2 hours
PAGE = TF.delta * LIMIT


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinance(now=NOW, symbols=["BTC-USDT", "ETH-USDT", "FOO-USDT"]) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def source(fake: FakeBinance, sleeps: list[float]) -> CcxtSource:
    return CcxtSource(
        "binance",
        api_url=fake.url,
        limit=LIMIT,
        max_retries=4,
        backoff_seconds=0.001,
        timeout_ms=400,
        now=lambda: NOW,
        sleep=sleeps.append,
    )


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def bars(frame: pd.DataFrame, symbol: str) -> list[datetime]:
    return sorted(frame.loc[frame["symbol"] == symbol, "ts"].dt.to_pydatetime())


def hours(start: float, end: float) -> list[datetime]:
    """The 15m bar opens in [DAY + start h, DAY + end h)."""
    opens = pd.date_range(
        DAY + timedelta(hours=start), DAY + timedelta(hours=end), freq="15min", inclusive="left"
    )
    return list(opens.to_pydatetime())


def test_pages_by_time_across_an_exchange_side_gap(fake: FakeBinance, source: CcxtSource) -> None:
    # 10 hours = 5 pages; no bars from 02:00 to 05:00 covers all of page 2 and half of page 3
    fake.gap("BTCUSDT", DAY + timedelta(hours=2), DAY + timedelta(hours=5))

    batch = source.fetch(["BTC-USDT"], TF, DAY, DAY + timedelta(hours=10))

    assert batch.failures == {}
    assert bars(batch.frame, "BTC-USDT") == hours(0, 2) + hours(5, 10)
    starts = [int(r.params["startTime"]) for r in fake.klines_requests("BTCUSDT")]
    assert starts == [ms(DAY + k * PAGE) for k in range(5)]
    assert list(batch.frame.columns) == FRAME_COLUMNS
    assert dict(batch.frame.dtypes) == dict(empty_frame().dtypes)


def test_rows_carry_prices_raw_timestamp_and_source_ref(fake: FakeBinance, source: CcxtSource) -> None:
    batch = source.fetch(["ETH-USDT"], TF, DAY, DAY + PAGE)

    row = batch.frame.iloc[3]
    opened = ms(DAY + 3 * TF.delta)
    served = fake.candle("ETHUSDT", "15m", opened)
    assert row["ts"] == pd.Timestamp(opened, unit="ms", tz="UTC")
    assert row["raw_timestamp"] == str(opened)
    assert [row[c] for c in ["open", "high", "low", "close", "volume"]] == [float(v) for v in served[1:6]]
    assert row["source_ref"] == f"binance ETH/USDT since={ms(DAY)} row 4"


def test_retries_429_5xx_and_a_timeout_then_returns_every_bar(
    fake: FakeBinance, source: CcxtSource, sleeps: list[float]
) -> None:
    fake.fault("ETHUSDT", 2, status=429)
    fake.fault("ETHUSDT", 3, status=500)
    fake.fault("ETHUSDT", 4, status=503)
    fake.fault("ETHUSDT", 5, delay=1.5)  # longer than the client's 400 ms timeout

    batch = source.fetch(["ETH-USDT"], TF, DAY, DAY + 3 * PAGE)

    assert batch.failures == {}
    assert bars(batch.frame, "ETH-USDT") == hours(0, 6)
    assert len(fake.klines_requests("ETHUSDT")) == 3 + 4
    assert len(sleeps) == 4
    assert sleeps == sorted(sleeps)  # exponential backoff


def test_unsorted_page_still_yields_every_bar(fake: FakeBinance, source: CcxtSource) -> None:
    fake.fault("BTCUSDT", 2, unsorted=True)

    batch = source.fetch(["BTC-USDT"], TF, DAY, DAY + 3 * PAGE)

    assert bars(batch.frame, "BTC-USDT") == hours(0, 6)
    assert len(batch.frame) == 24


def test_empty_page_mid_range_does_not_stop_paging(fake: FakeBinance, source: CcxtSource) -> None:
    fake.fault("BTCUSDT", 2, empty=True)

    batch = source.fetch(["BTC-USDT"], TF, DAY, DAY + 4 * PAGE)

    assert bars(batch.frame, "BTC-USDT") == hours(0, 2) + hours(4, 8)
    assert len(fake.klines_requests("BTCUSDT")) == 4


def test_still_forming_newest_candle_is_dropped(fake: FakeBinance, source: CcxtSource) -> None:
    forming = DAY + timedelta(hours=12)
    assert ms(forming) in fake.bar_opens("BTCUSDT", "15m", ms(DAY), ms(NOW) + 1)  # it is served

    batch = source.fetch(["BTC-USDT"], TF, DAY + timedelta(hours=10), DAY + timedelta(hours=14))

    assert bars(batch.frame, "BTC-USDT") == hours(10, 12)  # ends with the 11:45 bar
    # nothing opens after now: no request for the future
    assert all(int(r.params["startTime"]) <= ms(NOW) for r in fake.klines_requests("BTCUSDT"))


def test_window_is_half_open(fake: FakeBinance, source: CcxtSource) -> None:
    start, end = DAY + timedelta(hours=3, minutes=7), DAY + timedelta(hours=5, minutes=15)
    fake.fault("ETHUSDT", 2, ignore_end=True)  # the last page overshoots `end`

    batch = source.fetch(["ETH-USDT"], TF, start, end)

    # 03:15 (first bar opening at or after start) up to 05:00; the 05:15 bar opens at `end`
    assert bars(batch.frame, "ETH-USDT") == hours(3.25, 5.25)
    assert len(fake.klines_requests("ETHUSDT")) == 2  # 2h08m: the second page is partial


@pytest.mark.parametrize(
    ("listed", "requests"),
    [
        pytest.param(False, 0, id="not in the market list: ccxt refuses before asking"),
        pytest.param(True, 1, id="listed but the exchange answers -1121 Invalid symbol"),
    ],
)
def test_unknown_symbol_fails_fast_and_the_others_are_returned(
    fake: FakeBinance, source: CcxtSource, sleeps: list[float], listed: bool, requests: int
) -> None:
    if listed:
        fake.delist("XYZ-USDT")

    batch = source.fetch(["BTC-USDT", "XYZ-USDT", "ETH-USDT"], TF, DAY, DAY + 2 * PAGE)

    assert list(batch.failures) == ["XYZ-USDT"]
    reason = batch.failures["XYZ-USDT"]
    assert "XYZ-USDT" in reason and "binance" in reason and "\n" not in reason
    assert len(fake.klines_requests("XYZUSDT")) == requests
    assert sleeps == []  # no retries
    assert bars(batch.frame, "BTC-USDT") == hours(0, 4)
    assert bars(batch.frame, "ETH-USDT") == hours(0, 4)


def test_symbol_failing_permanently_exhausts_retries_and_the_others_are_returned(
    fake: FakeBinance, source: CcxtSource
) -> None:
    fake.fault("FOOUSDT", always=True, status=503)

    batch = source.fetch(["FOO-USDT", "BTC-USDT", "ETH-USDT"], TF, DAY, DAY + 2 * PAGE)

    assert list(batch.failures) == ["FOO-USDT"]
    reason = batch.failures["FOO-USDT"]
    assert "FOO-USDT" in reason and "binance" in reason and "\n" not in reason
    assert len(fake.klines_requests("FOOUSDT")) == 1 + 4  # first try + max_retries
    assert "FOO-USDT" not in set(batch.frame["symbol"])
    assert bars(batch.frame, "BTC-USDT") == hours(0, 4)
    assert bars(batch.frame, "ETH-USDT") == hours(0, 4)


def test_markets_are_loaded_once_and_only_spot(fake: FakeBinance, source: CcxtSource) -> None:
    source.fetch(["BTC-USDT"], TF, DAY, DAY + PAGE)
    source.fetch(["ETH-USDT"], TF, DAY, DAY + PAGE)

    assert [r.path for r in fake.requests if not r.path.endswith("/klines")] == ["/api/v3/exchangeInfo"]


def test_api_url_sends_the_markets_and_candle_requests_to_the_given_server(fake: FakeBinance) -> None:
    batch = CcxtSource("binance", api_url=fake.url, max_retries=0).fetch(["BTC-USDT"], TF, DAY, DAY + PAGE)

    assert not batch.failures and len(batch.frame) > 0
    assert {r.path for r in fake.requests} == {"/api/v3/exchangeInfo", "/api/v3/klines"}


@pytest.mark.parametrize(
    ("exchange", "limit", "expected"),
    [
        ("binance", None, 1000),
        ("coinbase", None, 300),
        ("kraken", None, 720),
        ("binance", 5000, 1000),
    ],
)
def test_page_size_is_the_exchange_maximum(exchange: str, limit: int | None, expected: int) -> None:
    assert CcxtSource(exchange, limit=limit).limit == expected


def test_unknown_exchange_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown ccxt exchange 'xyz'.*ccxt:binance"):
        CcxtSource("xyz")
