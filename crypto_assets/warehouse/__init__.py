"""Warehouse domain: one SQLAlchemy-based interface over DuckDB and PostgreSQL."""

from crypto_assets.warehouse.engine import Warehouse, WarehouseBusy

__all__ = ["Warehouse", "WarehouseBusy"]
