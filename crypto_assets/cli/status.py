"""`crypto-assets status`: coverage and freshness per symbol and timeframe."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from crypto_assets.market import Timeframe
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.schema import ensure_ingestion_tables


@dataclass
class StatusReport:
    table: pd.DataFrame

    @property
    def healthy(self) -> bool:
        return bool((self.table["state"] == "ok").all())


def symbol_status(
    warehouse: Warehouse,
    *,
    exchange: str,
    symbols: Sequence[str],
    timeframe: Timeframe,
    now: datetime,
    max_age: timedelta,
) -> StatusReport:
    """Per symbol: first and newest bar, coverage between them, age of the newest closed bar."""
    with warehouse.begin() as connection:
        ensure_ingestion_tables(connection)
    stored = warehouse.query(
        """
        SELECT symbol, count(*) AS bars, min(ts) AS first_bar, max(ts) AS newest_bar
        FROM raw_ohlc WHERE exchange = :exchange AND timeframe = :timeframe
        GROUP BY symbol
        """,
        {"exchange": exchange, "timeframe": timeframe.name},
    ).set_index("symbol")
    quarantined = warehouse.query(
        "SELECT symbol, count(*) AS n FROM ohlc_quarantine "
        "WHERE exchange = :exchange AND timeframe = :timeframe GROUP BY symbol",
        {"exchange": exchange, "timeframe": timeframe.name},
    ).set_index("symbol")["n"]
    rows = []
    for symbol in symbols:
        if symbol not in stored.index:
            rows.append({"symbol": symbol, "timeframe": timeframe.name, "bars": 0, "state": "missing"})
            continue
        first = pd.Timestamp(stored.loc[symbol, "first_bar"])
        newest = pd.Timestamp(stored.loc[symbol, "newest_bar"])
        bars = int(stored.loc[symbol, "bars"])
        expected = int((newest - first).total_seconds() // timeframe.seconds) + 1
        age = pd.Timestamp(now) - (newest + timeframe.delta)  # since the newest bar closed
        rows.append(
            {
                "symbol": symbol,
                "timeframe": timeframe.name,
                "bars": bars,
                "first_bar": f"{first:%Y-%m-%d %H:%M}",
                "newest_bar": f"{newest:%Y-%m-%d %H:%M}",
                "coverage": f"{bars / expected:.1%}",
                "gaps": expected - bars,
                "quarantined": int(quarantined.get(symbol, 0)),
                "age": _age(age),
                "state": "stale" if age > pd.Timedelta(max_age) else "ok",
            }
        )
    columns = ["symbol", "timeframe", "bars", "first_bar", "newest_bar", "coverage", "gaps",
               "quarantined", "age", "state"]  # fmt: skip
    return StatusReport(table=pd.DataFrame(rows, columns=columns).fillna(""))


def _age(delta: pd.Timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 120:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // 1440}d"
