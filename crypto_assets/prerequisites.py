"""What an asset needs to find in the warehouse before it runs.

Each table is created by the domain that owns it (raw_ohlc by its load, features by the features
refresh, the label tables by their assets); an asset run before its upstream ever was fails with
one line that says what to materialize first, instead of the engine's "relation does not exist".
"""

from __future__ import annotations

from dagster import Failure

from crypto_assets.warehouse import Warehouse


def require_tables(warehouse: Warehouse, *tables: str) -> None:
    missing = [table for table in tables if not warehouse.has_table(table)]
    if missing:
        raise Failure(
            description=f"{', '.join(missing)} not in the warehouse {warehouse.describe()} yet: "
            f"materialize {', '.join(missing)} first"
        )
