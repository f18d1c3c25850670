"""Label tables `strategy_<name>_labels`: DDL and the idempotent rewrite."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crypto_assets.labels.strategies import LABEL_COLUMNS
from crypto_assets.warehouse.bulk import append_frame

if TYPE_CHECKING:  # loaded on first use, not with the code location
    import pandas as pd
    from sqlalchemy.engine import Connection


def label_table(strategy: str) -> str:
    return f"strategy_{strategy}_labels"


def ensure_label_table(connection: Connection, strategy: str) -> None:
    connection.exec_driver_sql(
        f"""
        CREATE TABLE IF NOT EXISTS {label_table(strategy)} (
            strategy VARCHAR NOT NULL,
            exchange VARCHAR NOT NULL,
            symbol VARCHAR NOT NULL,
            timeframe VARCHAR NOT NULL,
            entry_ts TIMESTAMPTZ NOT NULL,
            entry_price DOUBLE PRECISION NOT NULL,
            take_profit_price DOUBLE PRECISION NOT NULL,
            stop_loss_price DOUBLE PRECISION NOT NULL,
            time_limit_ts TIMESTAMPTZ NOT NULL,
            exit_ts TIMESTAMPTZ NOT NULL,
            outcome VARCHAR NOT NULL,  -- take_profit, stop_loss or timeout
            label SMALLINT NOT NULL,  -- 1 for take_profit
            bars_to_exit INTEGER NOT NULL,
            realized_return DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (strategy, exchange, symbol, timeframe, entry_ts)
        )
        """
    )


def rewrite_labels(connection: Connection, strategy: str, timeframe: str, labels: pd.DataFrame) -> None:
    """In the caller's transaction: replace every label of `strategy` at `timeframe` by `labels`
    (each run relabels the whole history it read, so the keys it recomputes are all of them)."""
    import sqlalchemy as sa

    connection.execute(
        sa.text(f"DELETE FROM {label_table(strategy)} WHERE strategy = :strategy AND timeframe = :timeframe"),
        {"strategy": strategy, "timeframe": timeframe},
    )
    if len(labels):
        append_frame(connection, labels[LABEL_COLUMNS], label_table(strategy))
