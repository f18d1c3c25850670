"""Candles from a live exchange through ccxt's REST API.

Paging is by time, not by the last row returned: page k asks for the bars opening in
[start + k * step, start + (k + 1) * step) with step = limit * timeframe, so an exchange-side
gap or an empty page can never stall or end the loop early (see shared/STACK_NOTES.md).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from crypto_assets.errors import UserError
from crypto_assets.ingestion.sources.base import (
    PRICE_COLUMNS,
    CandleSource,
    SourceBatch,
    empty_frame,
    make_frame,
)
from crypto_assets.ingestion.timestamps import to_utc
from crypto_assets.market import Timeframe, to_ccxt_symbol

if TYPE_CHECKING:
    import ccxt

T = TypeVar("T")

# Most candles one fetch_ohlcv call returns. Kraken also serves only its newest 720 bars.
MAX_CANDLES_PER_CALL = {"binance": 1000, "binanceus": 1000, "coinbase": 300, "kraken": 720}
DEFAULT_CANDLES_PER_CALL = 500

# Exchanges whose fetch_ohlcv is known to honour ccxt's unified `until` param. Elsewhere an
# unknown param is passed straight into the exchange's query string, which may reject it.
_UNTIL_SUPPORTED = {"binance", "binanceus", "bybit", "coinbase", "okx", "bitstamp"}

_ORIGIN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]+")
_MAX_REASON = 300


class CcxtSource(CandleSource):
    """OHLC candles of spot pairs on one ccxt exchange, e.g. `CcxtSource("binance")`.

    `api_url` replaces the scheme and host of every API URL of the exchange, keeping the
    paths (Binance spot becomes `<api_url>/api/v3/...`), so a test server can stand in
    for the whole exchange and nothing reaches the real one.
    """

    def __init__(
        self,
        exchange_id: str,
        *,
        api_url: str | None = None,
        max_retries: int = 5,
        backoff_seconds: float = 1.0,
        timeout_ms: int = 10_000,
        limit: int | None = None,
        now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import ccxt

        if exchange_id not in ccxt.exchanges:
            raise UserError(
                f"unknown ccxt exchange {exchange_id!r}: use one of ccxt.exchanges, e.g. ccxt:binance"
            )
        self.exchange = exchange_id
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._now = now or (lambda: datetime.now(UTC))
        self._sleep = sleep
        self._client: ccxt.Exchange = getattr(ccxt, exchange_id)(
            {"enableRateLimit": True, "timeout": timeout_ms}
        )
        if not self._client.has.get("fetchOHLCV"):
            raise UserError(f"ccxt exchange {exchange_id!r} has no candle API: pick another exchange")
        spot_ohlcv = ((self._client.features or {}).get("spot") or {}).get("fetchOHLCV") or {}
        most = MAX_CANDLES_PER_CALL.get(exchange_id) or spot_ohlcv.get("limit")
        # Never page wider than the exchange answers: ccxt would silently clamp the request
        # and every page would miss its tail.
        self.limit: int = min(limit or most or DEFAULT_CANDLES_PER_CALL, most or 10**9)
        _only_spot_markets(self._client)
        if api_url:
            urls = self._client.urls
            self._client.urls = {**urls, "api": _rebase(urls.get("api"), api_url)}

    def fetch(
        self, symbols: Sequence[str], timeframe: Timeframe, start: datetime, end: datetime
    ) -> SourceBatch:
        """Every bar the exchange gives in [start, end) except the still-forming newest one.

        A symbol whose fetch fails permanently contributes no rows, only a `failures` entry:
        a half-fetched window would look complete downstream.
        """
        import ccxt

        offered = self._client.timeframes
        if offered and timeframe.name not in offered:
            raise UserError(
                f"timeframe {timeframe.name} is not offered by {self.exchange}: "
                f"use one of {', '.join(offered)}"
            )
        try:
            # ccxt keeps the markets on the client: this hits the network once per source.
            self._retrying(self._client.load_markets)
        except ccxt.BaseError as error:
            reason = (
                f"cannot load the markets of {self.exchange} "
                f"({_describe(error, self.max_retries)}): check the network, then run again"
            )
            return SourceBatch(empty_frame(), {s: f"{s}: {reason}" for s in symbols})

        frames: list[pd.DataFrame] = []
        failures: dict[str, str] = {}
        for symbol in symbols:
            try:
                frames.append(self._fetch_symbol(symbol, timeframe, start, end))
            except ccxt.BaseError as error:
                failures[symbol] = self._failure(symbol, error)
        frames = [frame for frame in frames if len(frame)]
        frame = pd.concat(frames, ignore_index=True) if frames else empty_frame()
        return SourceBatch(frame, failures)

    def _fetch_symbol(
        self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> pd.DataFrame:
        market = to_ccxt_symbol(symbol)
        bar_ms = timeframe.seconds * 1000
        step = self.limit * bar_ms
        start_ms, end_ms, now_ms = _epoch_ms(start), _epoch_ms(end), _epoch_ms(self._now())
        stop = min(end_ms, now_ms + 1)  # no bar opens after now: don't ask for the future
        rows: list[tuple[Any, ...]] = []
        since = start_ms
        while since < stop:
            until = min(since + step, end_ms) - 1
            params = {"until": until} if self.exchange in _UNTIL_SUPPORTED else {}
            page = self._retrying(
                lambda since=since, params=params: self._client.fetch_ohlcv(
                    market, timeframe.name, since=since, limit=self.limit, params=params
                )
            )
            # ccxt has already sorted the page and dropped rows without a timestamp.
            for number, (ts, *prices) in enumerate(page, start=1):
                if start_ms <= ts < end_ms and ts + bar_ms <= now_ms:
                    ref = f"{self.exchange} {market} since={since} row {number}"
                    rows.append((ts, *prices[:5], ref))
            since += step
        if not rows:
            return empty_frame()
        table = pd.DataFrame(rows, columns=["raw", *PRICE_COLUMNS, "source_ref"])
        return make_frame(symbol, to_utc(table["raw"]), table["raw"].astype(str), table, table["source_ref"])

    def _retrying(self, call: Callable[[], T]) -> T:
        """`call()`, retried with exponential backoff and jitter on transient ccxt errors.

        `OperationFailed` covers NetworkError (rate limit, DDoS protection, timeouts,
        exchange not available) and also what exchanges flag as "internal error, try
        again" (Binance -1000/-1001). Everything else (BadSymbol, BadRequest,
        NotSupported, AuthenticationError, ...) is an ExchangeError and is raised at once.
        """
        import ccxt

        for attempt in range(self.max_retries + 1):
            try:
                return call()
            except ccxt.OperationFailed:
                if attempt == self.max_retries:
                    raise
                delay = self.backoff_seconds * 2**attempt
                self._sleep(delay + random.uniform(0, delay / 2))
        raise AssertionError("unreachable")

    def _failure(self, symbol: str, error: Exception) -> str:
        import ccxt

        market = to_ccxt_symbol(symbol)
        if isinstance(error, ccxt.BadSymbol):
            return (
                f"{symbol}: {self.exchange} does not list {market} ({_one_line(error)}): "
                "check the spelling or remove it from CRYPTO_ASSETS_SYMBOLS"
            )
        if isinstance(error, ccxt.OperationFailed):
            return (
                f"{symbol}: {self.exchange} kept failing for {market} "
                f"({_describe(error, self.max_retries)}): the exchange may be down or "
                "rate-limiting, run again later"
            )
        return (
            f"{symbol}: {self.exchange} rejected the candle request for {market} "
            f"({_describe(error, self.max_retries)}): check the symbol and timeframe"
        )


def _only_spot_markets(client: ccxt.Exchange) -> None:
    """Load only spot markets where the exchange lets us choose (Binance: 1 request, not 3).

    Our symbols are BASE-QUOTE spot pairs; derivatives markets are never used.
    """
    choice = client.options.get("fetchMarkets")
    if isinstance(choice, dict) and "spot" in (choice.get("types") or []):
        client.options["fetchMarkets"] = {**choice, "types": ["spot"]}
    elif isinstance(choice, list) and "spot" in choice:
        client.options["fetchMarkets"] = ["spot"]


def _rebase(urls: Any, api_url: str) -> Any:
    """`urls` (a URL or a nested dict of them) with each origin replaced by `api_url`."""
    if isinstance(urls, dict):
        return {key: _rebase(value, api_url) for key, value in urls.items()}
    if isinstance(urls, str):
        return _ORIGIN.sub(api_url.rstrip("/"), urls, count=1)
    return urls


def _epoch_ms(when: datetime) -> int:
    stamp = pd.Timestamp(when)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.value // 1_000_000


def _describe(error: Exception, max_retries: int) -> str:
    import ccxt

    tries = f" after {max_retries + 1} attempts" if isinstance(error, ccxt.OperationFailed) else ""
    return f"{type(error).__name__}{tries}: {_one_line(error)}"


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."
