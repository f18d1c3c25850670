"""Holes inside each symbol's stored range of raw_ohlc, and the record of those the source could not fill.

A hole is a run of missing bars between two stored bars of one symbol (bars before a symbol's
first or after its newest bar are history not loaded yet or staleness, not holes). Holes are
cut at UTC midnight into one segment per day, the unit raw_ohlc is loaded and repaired in.

`ohlc_unfillable_gaps` holds the segments a gap repair run asked the source for and got nothing
(or only rejected rows): the gap repair sensor does not request them again until someone clears
them (`crypto-assets gaps --clear [SYMBOL]`). A record is dropped by any later load that stores a
bar inside it, since the hole is then no longer the one that was tried; a hole that grew (its
first missing bar the same) has its record widened by the repair run that tried it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from crypto_assets.market import Timeframe

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection

    from crypto_assets.warehouse import Warehouse

UNFILLABLE_TABLE = "ohlc_unfillable_gaps"
UNFILLABLE_COLUMNS = [
    "exchange", "symbol", "timeframe", "first_missing", "last_missing", "missing_bars", "tried_at", "run_id",
]  # fmt: skip


@dataclass(frozen=True, order=True)
class Hole:
    """Missing bars of one symbol inside one UTC day: open times first..last, both missing."""

    day: date
    symbol: str
    first_missing: datetime
    last_missing: datetime
    missing_bars: int

    def describe(self) -> str:
        first, last = self.first_missing, self.last_missing
        return f"{self.symbol} {first:%Y-%m-%d %H:%M}..{last:%H:%M} ({self.missing_bars} bars)"


def find_holes(
    connection: Connection, *, exchange: str, timeframe: Timeframe, symbols: Sequence[str] | None = None
) -> list[Hole]:
    """Every hole of `exchange`'s `timeframe` bars (of `symbols`, or all), split by UTC day."""
    import sqlalchemy as sa

    step = timeframe.delta
    where = "exchange = :exchange AND timeframe = :timeframe"
    params: dict = {"exchange": exchange, "timeframe": timeframe.name}
    if symbols is not None:
        if not symbols:
            return []
        where += " AND symbol IN :symbols"
        params["symbols"] = list(symbols)
    query = sa.text(
        "SELECT symbol, ts, next_ts FROM ("
        " SELECT symbol, ts, LEAD(ts) OVER (PARTITION BY symbol ORDER BY ts) AS next_ts"
        f" FROM raw_ohlc WHERE {where}"
        f") bars WHERE next_ts > ts + INTERVAL '{int(step.total_seconds())} seconds'"
        " ORDER BY symbol, ts"
    )
    if symbols is not None:
        query = query.bindparams(sa.bindparam("symbols", expanding=True))
    holes = []
    for symbol, before, after in connection.execute(query, params):
        holes += _split_by_day(symbol, _utc(before) + step, _utc(after) - step, step)
    return sorted(holes)


def _split_by_day(symbol: str, first: datetime, last: datetime, step: timedelta) -> list[Hole]:
    holes = []
    day = first.date()
    while day <= last.date():
        day_start = datetime.combine(day, datetime.min.time(), UTC)
        start = max(first, day_start)
        # the last bar of the day that opens on the grid of `first`
        end = min(
            last, start + (day_start + timedelta(days=1) - start - timedelta(microseconds=1)) // step * step
        )
        holes.append(Hole(day, symbol, start, end, (end - start) // step + 1))
        day += timedelta(days=1)
    return holes


def _utc(value) -> datetime:
    """A stored timestamp as an aware UTC datetime (drivers return datetime or pandas Timestamp)."""
    value = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def has_unfillable_table(connection: Connection) -> bool:
    import sqlalchemy as sa

    return sa.inspect(connection).has_table(UNFILLABLE_TABLE)


def read_unfillable(
    connection: Connection,
    *,
    exchange: str | None = None,
    timeframe: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """The recorded unfillable holes (of one exchange and timeframe, first missing bar in [start, end))."""
    import pandas as pd
    import sqlalchemy as sa

    if not has_unfillable_table(connection):
        return pd.DataFrame(columns=UNFILLABLE_COLUMNS)
    filters, params = [], {}
    for column, value in (("exchange", exchange), ("timeframe", timeframe)):
        if value is not None:
            filters.append(f"{column} = :{column}")
            params[column] = value
    if start is not None:
        filters.append("first_missing >= :start AND first_missing < :end")
        params.update(start=start, end=end)
    where = f" WHERE {' AND '.join(filters)}" if filters else ""
    result = connection.execute(
        sa.text(
            f"SELECT {', '.join(UNFILLABLE_COLUMNS)} FROM {UNFILLABLE_TABLE}{where} "
            "ORDER BY exchange, symbol, timeframe, first_missing"
        ),
        params,
    )
    return pd.DataFrame(result.fetchall(), columns=UNFILLABLE_COLUMNS)


def is_recorded(hole: Hole, unfillable: pd.DataFrame) -> bool:
    """Whether a record of `unfillable` (one exchange and timeframe) covers all of `hole`."""
    if unfillable.empty:
        return False
    same = unfillable[unfillable["symbol"] == hole.symbol]
    return any(
        _utc(first) <= hole.first_missing and _utc(last) >= hole.last_missing
        for first, last in zip(same["first_missing"], same["last_missing"], strict=True)
    )


def settle_unfillable(
    warehouse: Warehouse,
    *,
    exchange: str,
    timeframe: Timeframe,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
    tried_at: datetime,
    run_id: str | None,
    record: bool,
) -> list[Hole]:
    """After a load of `symbols` over [start, end): drop the records of holes it stored a bar in;
    with `record` (a gap repair run) record the holes it left there and return them."""
    import sqlalchemy as sa

    if not symbols:
        return []
    drop = sa.text(
        f"DELETE FROM {UNFILLABLE_TABLE} WHERE exchange = :exchange AND timeframe = :timeframe "
        "AND symbol IN :symbols AND first_missing >= :start AND first_missing < :end AND EXISTS ("
        f" SELECT 1 FROM raw_ohlc r WHERE r.exchange = {UNFILLABLE_TABLE}.exchange"
        f" AND r.symbol = {UNFILLABLE_TABLE}.symbol AND r.timeframe = {UNFILLABLE_TABLE}.timeframe"
        f" AND r.ts >= {UNFILLABLE_TABLE}.first_missing AND r.ts <= {UNFILLABLE_TABLE}.last_missing)"
    ).bindparams(sa.bindparam("symbols", expanding=True))
    params = {
        "exchange": exchange,
        "timeframe": timeframe.name,
        "symbols": list(symbols),
        "start": start,
        "end": end,
    }
    with warehouse.begin() as connection:
        connection.execute(drop, params)
        if not record:  # an ordinary load: no scan for holes (the sensor's job)
            return []
        left = [
            hole
            for hole in find_holes(connection, exchange=exchange, timeframe=timeframe, symbols=symbols)
            if start <= hole.first_missing < end
        ]
        _record(connection, left, exchange=exchange, timeframe=timeframe, tried_at=tried_at, run_id=run_id)
    return left


def _record(
    connection: Connection,
    holes: Sequence[Hole],
    *,
    exchange: str,
    timeframe: Timeframe,
    tried_at: datetime,
    run_id: str | None,
) -> None:
    import sqlalchemy as sa

    if holes:
        insert = sa.text(
            f"INSERT INTO {UNFILLABLE_TABLE} ({', '.join(UNFILLABLE_COLUMNS)}) "
            f"VALUES ({', '.join(':' + column for column in UNFILLABLE_COLUMNS)}) "
            # recorded once: a hole tried again keeps its first record; one that grew since (same
            # first missing bar, a later last one) is recorded as it is now, or it would never be
            # covered by its record and be asked for on every tick
            "ON CONFLICT (exchange, symbol, timeframe, first_missing) DO UPDATE SET "
            "last_missing = excluded.last_missing, missing_bars = excluded.missing_bars, "
            "tried_at = excluded.tried_at, run_id = excluded.run_id "
            f"WHERE {UNFILLABLE_TABLE}.last_missing <> excluded.last_missing"
        )
        connection.execute(
            insert,
            [
                {
                    "exchange": exchange,
                    "symbol": hole.symbol,
                    "timeframe": timeframe.name,
                    "first_missing": hole.first_missing,
                    "last_missing": hole.last_missing,
                    "missing_bars": hole.missing_bars,
                    "tried_at": tried_at,
                    "run_id": run_id,
                }
                for hole in holes
            ],
        )


def clear_unfillable(connection: Connection, *, symbol: str | None = None) -> int:
    """Forget recorded unfillable holes (of one symbol, or all): gap repair tries them again."""
    import sqlalchemy as sa

    if not has_unfillable_table(connection):
        return 0
    where, params = (" WHERE symbol = :symbol", {"symbol": symbol}) if symbol else ("", {})
    count = connection.execute(
        sa.text(f"SELECT count(*) FROM {UNFILLABLE_TABLE}{where}"), params
    ).scalar_one()
    connection.execute(sa.text(f"DELETE FROM {UNFILLABLE_TABLE}{where}"), params)
    return int(count)
