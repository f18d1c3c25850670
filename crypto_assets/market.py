"""Symbols and timeframes: the vocabulary every module shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from crypto_assets.errors import UserError

_SYMBOL = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")
_TIMEFRAME = re.compile(r"^(\d+)([mhd])$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def parse_symbol(text: str) -> str:
    """Normalize a `BASE-QUOTE` symbol (`btc-usd` -> `BTC-USD`); accept ccxt's `BTC/USD`."""
    symbol = text.strip().upper().replace("/", "-")
    if not _SYMBOL.match(symbol):
        raise UserError(f"symbol {text!r} is not BASE-QUOTE (for example BTC-USD): fix the symbol list")
    return symbol


def parse_symbols(text: str | list[str]) -> list[str]:
    """Parse a comma-separated list (or a list) of symbols, keeping order and dropping repeats."""
    items = text.split(",") if isinstance(text, str) else text
    symbols = [parse_symbol(item) for item in items if item.strip()]
    if not symbols:
        raise UserError("no symbols given: set CRYPTO_ASSETS_SYMBOLS, e.g. BTC-USD,ETH-USD")
    return list(dict.fromkeys(symbols))


def to_ccxt_symbol(symbol: str) -> str:
    return symbol.replace("-", "/")


@dataclass(frozen=True)
class Timeframe:
    """A bar length such as `15m`, `1h` or `1d`; bars open on multiples of it since the epoch (UTC)."""

    name: str
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        match = _TIMEFRAME.match(text.strip())
        if not match or int(match.group(1)) == 0:
            raise UserError(f"timeframe {text!r} is not like 15m, 1h or 1d: fix CRYPTO_ASSETS_TIMEFRAME")
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        if 86400 % seconds:
            raise UserError(f"timeframe {text!r} does not divide a day: use 1m, 5m, 15m, 1h, 4h or 1d")
        return cls(text.strip(), seconds)

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    @property
    def bars_per_day(self) -> int:
        return 86400 // self.seconds

    @property
    def pandas_freq(self) -> str:
        return f"{self.seconds}s"

    def floor(self, when: datetime) -> datetime:
        """The open time of the bar that contains `when` (naive means UTC), as an aware UTC datetime.

        Plain datetime arithmetic: this module is imported when the code location loads, so it
        must not pull in pandas (a pandas Timestamp is a datetime and works the same)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        bars = (when - _EPOCH) // self.delta
        return _EPOCH + bars * self.delta

    def last_closed_open(self, now: datetime) -> datetime:
        """Open time of the newest bar that has closed by `now`."""
        return self.floor(now) - self.delta

    def __str__(self) -> str:
        return self.name
