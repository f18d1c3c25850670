"""Coverage of stored candles: bars present against bars expected, per symbol."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from crypto_assets.market import Timeframe

if TYPE_CHECKING:
    import pandas as pd

    from crypto_assets.warehouse.engine import Warehouse


def expected_bars(timeframe: Timeframe, start: datetime, end: datetime, now: datetime) -> int:
    """Closed bars that open in [start, end) by `now`."""
    import pandas as pd

    stop = min(pd.Timestamp(end), pd.Timestamp(timeframe.floor(now)))
    seconds = (stop - pd.Timestamp(start)).total_seconds()
    return max(0, int(seconds // timeframe.seconds))


def window_coverage(
    warehouse: Warehouse,
    *,
    exchange: str,
    symbols: Sequence[str],
    timeframe: Timeframe,
    start: datetime,
    end: datetime,
    now: datetime,
) -> pd.DataFrame:
    """One row per symbol: present, expected, missing, newest bar, inside [start, end)."""
    import pandas as pd

    stored = warehouse.query(
        """
        SELECT symbol, count(*) AS present, max(ts) AS newest
        FROM raw_ohlc
        WHERE exchange = :exchange AND timeframe = :timeframe AND ts >= :start AND ts < :end
        GROUP BY symbol
        """,
        {"exchange": exchange, "timeframe": timeframe.name, "start": start, "end": end},
    ).set_index("symbol")
    expected = expected_bars(timeframe, start, end, now)
    rows = []
    for symbol in symbols:
        present = int(stored.loc[symbol, "present"]) if symbol in stored.index else 0
        newest = stored.loc[symbol, "newest"] if symbol in stored.index else None
        rows.append(
            {
                "symbol": symbol,
                "present": present,
                "expected": expected,
                "missing": max(0, expected - present),
                "newest": pd.Timestamp(newest).isoformat() if newest is not None else "",
            }
        )
    return pd.DataFrame(rows, columns=["symbol", "present", "expected", "missing", "newest"])


#: how far back the newest bar of a symbol is looked for (a symbol silent longer shows no bar)
NEWEST_LOOKBACK = timedelta(days=30)


def newest_bars(
    warehouse: Warehouse, *, exchange: str, symbols: Sequence[str], timeframe: Timeframe, now: datetime
) -> dict[str, datetime | None]:
    """The open time of each symbol's newest stored bar (None: none in the last 30 days)."""
    import pandas as pd

    stored = warehouse.query(
        "SELECT symbol, max(ts) AS newest FROM raw_ohlc "
        "WHERE exchange = :exchange AND timeframe = :timeframe AND ts >= :since GROUP BY symbol",
        {"exchange": exchange, "timeframe": timeframe.name, "since": now - NEWEST_LOOKBACK},
    ).set_index("symbol")["newest"]
    return {
        symbol: pd.Timestamp(stored[symbol]).to_pydatetime() if symbol in stored.index else None
        for symbol in symbols
    }
