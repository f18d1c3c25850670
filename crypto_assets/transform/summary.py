"""A short report of what the dbt models hold, for `crypto-assets demo`."""

from __future__ import annotations

import pandas as pd

from crypto_assets.names import RESAMPLED_MODELS, WINDOW_MODELS
from crypto_assets.warehouse import Warehouse


def model_summary(warehouse: Warehouse, tables: list[str]) -> pd.DataFrame:
    """Rows, symbols, newest bar, and incomplete / still-open buckets of each model table."""
    rows = []
    for table in sorted(tables, key=_timeframe_order):
        try:
            stats = warehouse.query(
                f'SELECT count(*) AS n, count(DISTINCT symbol) AS s, max(ts) AS newest FROM "{table}"'
            ).iloc[0]
        except Exception:  # not built yet (a failed or skipped run)
            rows.append({"model": table, "rows": "not built"})
            continue
        row = {"model": table, "rows": int(stats["n"]), "symbols": int(stats["s"])}
        row["newest_bar"] = stats["newest"]
        if table not in WINDOW_MODELS:
            flags = warehouse.query(
                f"SELECT count(*) FILTER (WHERE NOT is_complete) AS incomplete, "
                f'count(*) FILTER (WHERE NOT is_closed) AS still_open FROM "{table}"'
            ).iloc[0]
            row.update(incomplete=int(flags["incomplete"]), still_open=int(flags["still_open"]))
        rows.append(row)
    columns = ["model", "rows", "symbols", "newest_bar", "incomplete", "still_open"]
    return pd.DataFrame([{c: row.get(c, "") for c in columns} for row in rows], columns=columns, dtype=object)


def _timeframe_order(table: str) -> tuple[int, str]:
    order = [*RESAMPLED_MODELS.values(), *WINDOW_MODELS]
    return (order.index(table) if table in order else len(order)), table
