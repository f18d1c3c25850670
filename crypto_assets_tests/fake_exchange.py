"""A local stand-in for Binance's spot REST API: real HTTP on 127.0.0.1, scripted faults.

    with FakeBinance(now=NOW, symbols=["BTC-USDT", "ETH-USDT"]) as fake:
        source = CcxtSource("binance", api_url=fake.url, ...)
        fake.fault("ETHUSDT", 2, status=429)            # 2nd klines request for ETHUSDT
        fake.fault("ETHUSDT", always=True, status=503)  # every klines request for ETHUSDT
        fake.gap("BTCUSDT", t0, t1)                     # the exchange has no bars in [t0, t1)

Endpoints: `/api/v3/exchangeInfo` (a minimal market list), `/api/v3/time`, `/api/v3/ping`
and `/api/v3/klines`, which answers like Binance: bars opening in [startTime, endTime],
at most `limit` (default 500, more than 1000 is an error), ascending, including the
still-forming bar that contains `now`. An unlisted or delisted symbol gets HTTP 400
`{"code": -1121, "msg": "Invalid symbol."}`. Candle values are a pure function of
(symbol, interval, open time), so tests can compute what they expect with `candle()`.
"""

from __future__ import annotations

import json
import random
import threading
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

INTERVAL_MS = {
    name: count * unit
    for unit, names in {60_000: "1m 3m 5m 15m 30m", 3_600_000: "1h 2h 4h 6h 8h 12h"}.items()
    for name in names.split()
    for count in [int(name[:-1])]
} | {"1d": 86_400_000}
_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "USD")
_ERROR_BODIES: dict[int, Any] = {
    418: {"code": -1003, "msg": "Way too many requests; IP banned."},
    429: {"code": -1003, "msg": "Too much request weight used."},
    500: {
        "code": -1001,
        "msg": "Internal error; unable to process your request. Please try again.",
    },
}


@dataclass(frozen=True)
class Fault:
    """What one scripted klines request does instead of (or before) answering normally.

    `delay` (seconds) is applied first, so a delay longer than the client's timeout makes
    the client give up; the server then answers into a closed socket.
    """

    status: int | None = None  # answer with this HTTP status (default body per status)
    body: Any = None  # JSON body (str: sent as text) instead of the default one
    delay: float = 0.0
    unsorted: bool = False  # the right bars, shuffled
    empty: bool = False  # `[]` even though bars exist
    ignore_end: bool = False  # answer as if no endTime was sent (bars past it, up to limit)


@dataclass(frozen=True)
class Request:
    """One request the server received, recorded on arrival."""

    path: str
    params: dict[str, str]
    number: int = 0  # for klines: 1 for the first request of this symbol, 2 for the next...

    @property
    def symbol(self) -> str | None:
        return self.params.get("symbol")


@dataclass
class _State:
    now_ms: int
    markets: dict[str, tuple[str, str]]  # id -> (base, quote)
    delisted: set[str] = field(default_factory=set)
    gaps: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    faults: dict[str, dict[int, Fault]] = field(default_factory=lambda: defaultdict(dict))
    always: dict[str, Fault] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class FakeBinance:
    """The server. Start it with `with FakeBinance(...) as fake:` or `start()` / `close()`."""

    def __init__(self, *, now: datetime | int, symbols: list[str] | tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._state = _State(now_ms=_ms(now), markets={})
        for symbol in symbols or ("BTC-USDT", "ETH-USDT"):
            self.add_symbol(symbol)
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread: threading.Thread | None = None
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeBinance:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes handlers sleeping in a scripted delay
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scripting -----------------------------------------------------------------------

    @property
    def now(self) -> int:
        """Server time in epoch ms; the bar containing it is still forming."""
        return self._state.now_ms

    @now.setter
    def now(self, value: datetime | int) -> None:
        with self._lock:
            self._state.now_ms = _ms(value)

    def add_symbol(self, symbol: str) -> None:
        """List a market (`BTC-USDT`, `BTC/USDT` or `BTCUSDT`) with candles."""
        base, quote = _split(symbol)
        with self._lock:
            self._state.markets[base + quote] = (base, quote)
            self._state.delisted.discard(base + quote)

    def delist(self, symbol: str) -> None:
        """Keep the market in exchangeInfo but answer its klines with -1121 Invalid symbol."""
        self.add_symbol(symbol)
        with self._lock:
            self._state.delisted.add(_id(symbol))

    def gap(self, symbol: str, start: datetime | int, end: datetime | int) -> None:
        """An exchange-side outage: no bars of `symbol` open in [start, end)."""
        with self._lock:
            self._state.gaps[_id(symbol)].append((_ms(start), _ms(end)))

    def fault(
        self,
        symbol: str,
        *requests: int,
        always: bool = False,
        status: int | None = None,
        body: Any = None,
        delay: float = 0.0,
        unsorted: bool = False,
        empty: bool = False,
        ignore_end: bool = False,
    ) -> None:
        """Script the klines requests number `requests` (1-based, per symbol), or all of them."""
        if not requests and not always:
            raise ValueError("name the request numbers, or pass always=True")
        fault = Fault(status, body, delay, unsorted=unsorted, empty=empty, ignore_end=ignore_end)
        with self._lock:
            if always:
                self._state.always[_id(symbol)] = fault
            for number in requests:
                self._state.faults[_id(symbol)][number] = fault

    # -- inspection ----------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._state.requests)

    def klines_requests(self, symbol: str) -> list[Request]:
        """The klines requests for `symbol`, in arrival order (retries included)."""
        return [r for r in self.requests if r.path.endswith("/klines") and r.symbol == _id(symbol)]

    def count(self, path_suffix: str) -> int:
        return sum(1 for r in self.requests if r.path.endswith(path_suffix))

    def candle(self, symbol: str, interval: str, open_ms: int) -> list[Any]:
        """The Binance kline row this server serves for a bar, forming or not."""
        bar = INTERVAL_MS[interval]
        index = open_ms // bar
        base = 100 + zlib.crc32(_id(symbol).encode()) % 900
        open_ = base + (index % 97) * 0.5
        close = base + ((index + 1) % 97) * 0.5
        volume = 10 + index % 7
        prices = [open_, max(open_, close) + 1, min(open_, close) - 1, close, volume]
        quote_volume = f"{volume * close:.8f}"
        return [open_ms, *(f"{p:.8f}" for p in prices), open_ms + bar - 1, quote_volume, 42]

    def bar_opens(self, symbol: str, interval: str, start: int, end: int) -> list[int]:
        """Open times (ms) of the bars this server has for `symbol` in [start, end)."""
        bar = INTERVAL_MS[interval]
        first = -(-start // bar) * bar
        with self._lock:
            gaps = list(self._state.gaps[_id(symbol)])
            now_ms = self._state.now_ms
        return [
            t for t in range(first, min(end, now_ms + 1), bar) if not any(g0 <= t < g1 for g0, g1 in gaps)
        ]

    # -- serving (runs on the server's threads) --------------------------------------------

    def _answer(self, path: str, params: dict[str, str]) -> tuple[int, Any, float]:
        """(status, body, delay) for one request."""
        with self._lock:
            state = self._state
            if path == "/api/v3/klines":
                symbol = params.get("symbol", "")
                state.counts[symbol] += 1
                number = state.counts[symbol]
                state.requests.append(Request(path, params, number))
                fault = state.faults[symbol].get(number) or state.always.get(symbol) or Fault()
                known = symbol in state.markets and symbol not in state.delisted
            else:
                state.requests.append(Request(path, params))
            now_ms = state.now_ms
            markets = dict(state.markets)
        if path == "/api/v3/ping":
            return 200, {}, 0.0
        if path == "/api/v3/time":
            return 200, {"serverTime": now_ms}, 0.0
        if path == "/api/v3/exchangeInfo":
            return 200, _exchange_info(markets, now_ms), 0.0
        if path != "/api/v3/klines":
            return 404, "<html><body>Not Found</body></html>", 0.0
        if fault.status is not None:
            body = fault.body if fault.body is not None else _ERROR_BODIES.get(fault.status)
            return fault.status, body if body is not None else "Service Unavailable", fault.delay
        if not known:
            return 400, {"code": -1121, "msg": "Invalid symbol."}, fault.delay
        return (*self._klines(symbol, params, now_ms, fault), fault.delay)

    def _klines(self, symbol: str, params: dict[str, str], now_ms: int, fault: Fault) -> tuple[int, Any]:
        interval = params.get("interval", "")
        if interval not in INTERVAL_MS:
            return 400, {"code": -1120, "msg": "Invalid interval."}
        limit = int(params.get("limit", 500))
        if not 1 <= limit <= 1000:
            return 400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}
        bar = INTERVAL_MS[interval]
        end_time = now_ms if fault.ignore_end else int(params.get("endTime", now_ms))
        end = min(end_time, now_ms) + 1
        if "startTime" in params:
            opens = self.bar_opens(symbol, interval, int(params["startTime"]), end)[:limit]
        else:  # the newest `limit` bars
            opens = self.bar_opens(symbol, interval, end - (limit + 1000) * bar, end)[-limit:]
        rows = [] if fault.empty else [self.candle(symbol, interval, t) for t in opens]
        if fault.unsorted:
            random.Random(len(rows)).shuffle(rows)
            if len(rows) > 1 and rows == sorted(rows):
                rows.reverse()
        return 200, rows


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out closed the socket: expected, not worth a traceback


def _handler_for(fake: FakeBinance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            status, body, delay = fake._answer(url.path, dict(parse_qsl(url.query)))
            if delay and fake._closing.wait(delay):
                return
            is_text = isinstance(body, str)
            data = (body if is_text else json.dumps(body)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if is_text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _exchange_info(markets: dict[str, tuple[str, str]], now_ms: int) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [
            {
                "symbol": market_id,
                "status": "TRADING",
                "baseAsset": base,
                "baseAssetPrecision": 8,
                "quoteAsset": quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [],
                "permissions": [],
                "permissionSets": [["SPOT"]],
            }
            for market_id, (base, quote) in markets.items()
        ],
    }


def _split(symbol: str) -> tuple[str, str]:
    text = symbol.upper().replace("/", "-")
    if "-" in text:
        base, quote = text.split("-", 1)
        return base, quote
    for quote in _QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            return text[: -len(quote)], quote
    raise ValueError(f"cannot tell base from quote in {symbol!r}: write it as BASE-QUOTE")


def _id(symbol: str) -> str:
    """Binance's market id: `BTC-USDT`, `BTC/USDT` and `BTCUSDT` are all `BTCUSDT`."""
    return symbol.upper().replace("-", "").replace("/", "")


def _ms(when: datetime | int) -> int:
    if isinstance(when, int):
        return when
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)
