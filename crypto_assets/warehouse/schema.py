"""Tables the ingestion domain owns. Plain DDL that DuckDB and PostgreSQL both accept."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

KEY_COLUMNS = ["exchange", "symbol", "timeframe", "ts"]
VALUE_COLUMNS = ["open", "high", "low", "close", "volume"]
#: a bar as readers of raw_ohlc and of the resampled dbt models see it
BAR_COLUMNS = [*KEY_COLUMNS, *VALUE_COLUMNS]

RAW_OHLC_DDL = """
CREATE TABLE IF NOT EXISTS raw_ohlc (
    exchange   VARCHAR NOT NULL,
    symbol     VARCHAR NOT NULL,
    timeframe  VARCHAR NOT NULL,
    ts         TIMESTAMPTZ NOT NULL,  -- UTC bar-open time
    open       DOUBLE PRECISION NOT NULL,
    high       DOUBLE PRECISION NOT NULL,
    low        DOUBLE PRECISION NOT NULL,
    close      DOUBLE PRECISION NOT NULL,
    volume     DOUBLE PRECISION NOT NULL,
    loaded_at  TIMESTAMPTZ NOT NULL,  -- when this version of the bar was written
    PRIMARY KEY (exchange, symbol, timeframe, ts)
)
"""

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS ohlc_quarantine (
    exchange       VARCHAR NOT NULL,
    timeframe      VARCHAR NOT NULL,
    source_ref     VARCHAR NOT NULL,  -- file and row, or exchange request, the row came from
    symbol         VARCHAR,
    raw_timestamp  VARCHAR,
    ts             TIMESTAMPTZ,
    open           DOUBLE PRECISION,
    high           DOUBLE PRECISION,
    low            DOUBLE PRECISION,
    close          DOUBLE PRECISION,
    volume         DOUBLE PRECISION,
    reason         VARCHAR NOT NULL,
    run_id         VARCHAR,
    quarantined_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (exchange, timeframe, source_ref)
)
"""

UNFILLABLE_GAPS_DDL = """
CREATE TABLE IF NOT EXISTS ohlc_unfillable_gaps (
    exchange       VARCHAR NOT NULL,
    symbol         VARCHAR NOT NULL,
    timeframe      VARCHAR NOT NULL,
    first_missing  TIMESTAMPTZ NOT NULL,  -- open time of the first missing bar (one UTC day at most)
    last_missing   TIMESTAMPTZ NOT NULL,  -- open time of the last missing bar, same day
    missing_bars   INTEGER NOT NULL,
    tried_at       TIMESTAMPTZ NOT NULL,  -- when a gap repair run asked the source and got nothing
    run_id         VARCHAR,
    PRIMARY KEY (exchange, symbol, timeframe, first_missing)
)
"""


def ensure_ingestion_tables(connection: Connection) -> None:
    connection.exec_driver_sql(RAW_OHLC_DDL)
    connection.exec_driver_sql(QUARANTINE_DDL)
    connection.exec_driver_sql(UNFILLABLE_GAPS_DDL)
