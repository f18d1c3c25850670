"""`crypto-assets gaps`: the holes the source could not fill, and clearing them for another try."""

from __future__ import annotations

from pathlib import Path

from crypto_assets.market import parse_symbol

ALL = "all"


def run_gaps(*, clear: str | None) -> int:
    import pandas as pd

    from crypto_assets.settings import load_settings
    from crypto_assets.warehouse import Warehouse
    from crypto_assets.warehouse.gaps import clear_unfillable, read_unfillable

    symbol = None if clear in (None, ALL) else parse_symbol(clear)
    with Warehouse(load_settings().warehouse_url) as warehouse:
        if warehouse.is_duckdb and not Path(warehouse.url.database or "").exists():
            print(f"no warehouse yet at {warehouse.describe()}: nothing recorded")
            return 0
        if clear is not None:
            with warehouse.begin() as connection:
                cleared = clear_unfillable(connection, symbol=symbol)
            print(
                f"cleared {cleared} unfillable hole(s){' of ' + symbol if symbol else ''}: gap repair "
                "asks the source for them again on its next tick"
            )
            return 0
        with warehouse.read() as connection:
            recorded = read_unfillable(connection)
    if recorded.empty:
        print("no unfillable holes recorded")
        return 0
    table = recorded.assign(
        first_missing=pd.to_datetime(recorded["first_missing"], utc=True).dt.strftime("%Y-%m-%d %H:%M"),
        last_missing=pd.to_datetime(recorded["last_missing"], utc=True).dt.strftime("%Y-%m-%d %H:%M"),
        tried_at=pd.to_datetime(recorded["tried_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M"),
        run_id=recorded["run_id"].fillna("").str[:8],
    )
    print("holes the source returned nothing for (UTC bar-open times; not requested again until cleared)")
    print(table.to_string(index=False))
    print("crypto-assets gaps --clear [SYMBOL] asks for them again")
    return 0
