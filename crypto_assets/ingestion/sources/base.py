"""The one interface every candle source implements.

A source returns *raw* candles for a time window: validation, keying and storage happen
downstream, the same way for every source.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from crypto_assets.market import Timeframe

if TYPE_CHECKING:  # pandas loads with the first fetch, not with the code location
    import pandas as pd

# Columns of SourceBatch.frame, in order.
#   symbol        BASE-QUOTE as configured
#   ts            datetime64[ns, UTC] bar-open time; NaT when the raw timestamp could not be parsed
#   raw_timestamp the timestamp exactly as the source gave it (string), kept for quarantine
#   open..volume  float64; NaN when missing or not a number
#   source_ref    where the row came from: "file.csv:row 12", "binance BTC/USDT page 3 row 7"
FRAME_COLUMNS = ["symbol", "ts", "raw_timestamp", "open", "high", "low", "close", "volume", "source_ref"]
PRICE_COLUMNS = ["open", "high", "low", "close", "volume"]


@dataclass
class SourceBatch:
    """Candles fetched for one window, plus the symbols that could not be fetched at all."""

    frame: pd.DataFrame
    failures: dict[str, str] = field(default_factory=dict)  # symbol -> one-line reason


class CandleSource(ABC):
    """A place candles come from: the synthetic market, a CSV folder or a ccxt exchange."""

    #: the value of the `exchange` key column for every row this source produces
    exchange: str

    def preflight(self) -> None:  # noqa: B027 - optional hook, most sources have nothing to check
        """Raise a UserError now for a mistake `fetch` would otherwise hit mid-run."""

    @abstractmethod
    def fetch(
        self, symbols: Sequence[str], timeframe: Timeframe, start: datetime, end: datetime
    ) -> SourceBatch:
        """Candles of `symbols` whose bar-open time is in [start, end), UTC.

        A symbol that fails permanently goes to `failures`; the others are still returned.
        Rows the source cannot vouch for are returned anyway and quarantined by validation.
        """


def empty_frame() -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame({column: pd.Series(dtype="float64") for column in FRAME_COLUMNS})
    frame["symbol"] = frame["symbol"].astype("string")
    frame["raw_timestamp"] = frame["raw_timestamp"].astype("string")
    frame["source_ref"] = frame["source_ref"].astype("string")
    frame["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame[FRAME_COLUMNS]


def make_frame(
    symbol: str | pd.Series,
    ts: pd.Series,
    raw_timestamp: pd.Series,
    prices: pd.DataFrame,
    source_ref: pd.Series,
) -> pd.DataFrame:
    """Assemble a frame in the contract's column order and dtypes."""
    import pandas as pd

    n = len(ts)
    frame = pd.DataFrame(
        {
            "symbol": pd.Series(symbol, index=range(n)) if isinstance(symbol, str) else symbol.values,
            "ts": ts.values,
            "raw_timestamp": raw_timestamp.astype("string").values,
        }
    )
    for column in PRICE_COLUMNS:
        frame[column] = pd.to_numeric(prices[column], errors="coerce").astype("float64").values
    frame["source_ref"] = source_ref.astype("string").values
    frame["symbol"] = frame["symbol"].astype("string")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame[FRAME_COLUMNS]
