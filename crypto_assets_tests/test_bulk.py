"""Bulk appends keep every value, NULLs included, whatever Arrow types the frame arrives in."""

from __future__ import annotations

import math

import pandas as pd
import pyarrow as pa
import pytest

from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.bulk import append_frame

DDL = """
CREATE TABLE bulk_probe (
    name VARCHAR NOT NULL,
    seen_at TIMESTAMPTZ,
    small SMALLINT,
    n INTEGER,
    ratio REAL,
    price DOUBLE PRECISION,
    flag BOOLEAN
)
"""


def test_values_of_every_column_type_round_trip(warehouse: Warehouse):
    frame = pd.DataFrame(
        {
            "name": ["BTC-USD", "ETH-USD", 'ünïcode, "quoted"\nline'],
            "seen_at": pd.to_datetime(
                ["2025-09-22T10:00:00Z", None, "1999-12-31T23:45:00.123456Z"], utc=True, format="ISO8601"
            ),
            "small": [1, -7, 32_000],  # int64 in pandas, SMALLINT in the table
            "n": pd.array([3, None, 5], dtype="Int64"),
            "ratio": [0.5, float("nan"), 1e-3],  # float64 in pandas, REAL in the table
            "price": [65_000.123456789, 1.0, None],
            "flag": [True, False, None],
        }
    )
    with warehouse.begin() as connection:
        connection.exec_driver_sql(DDL)
        append_frame(connection, frame, "bulk_probe")
    stored = warehouse.query("SELECT * FROM bulk_probe")
    assert len(stored) == 3
    by_name = stored.set_index("name").loc[frame["name"]]
    assert pd.Timestamp(by_name.loc["BTC-USD", "seen_at"]) == pd.Timestamp("2025-09-22T10:00:00Z")
    assert pd.isna(by_name.loc["ETH-USD", "seen_at"])
    assert pd.Timestamp(by_name.loc['ünïcode, "quoted"\nline', "seen_at"]) == pd.Timestamp(
        "1999-12-31T23:45:00.123456Z"
    )
    assert by_name["small"].tolist() == [1, -7, 32_000]
    assert pd.isna(by_name.loc["ETH-USD", "n"]) and by_name.loc["BTC-USD", "n"] == 3
    assert math.isclose(by_name.loc['ünïcode, "quoted"\nline', "ratio"], 1e-3, rel_tol=1e-6)
    assert by_name.loc["BTC-USD", "price"] == 65_000.123456789
    assert pd.isna(by_name.loc['ünïcode, "quoted"\nline', "price"])
    assert by_name.loc["BTC-USD", "flag"] == True  # noqa: E712 - numpy/pandas booleans
    assert pd.isna(by_name.loc['ünïcode, "quoted"\nline', "flag"])


def test_a_value_too_large_for_its_column_fails_instead_of_wrapping(warehouse: Warehouse):
    frame = pd.DataFrame({"name": ["x"], "small": [70_000]})
    with warehouse.begin() as connection:
        connection.exec_driver_sql(DDL)
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    with (
        pytest.raises(Exception, match="70000|out of range|overflow") as error,  # noqa: B017
        warehouse.begin() as connection,
    ):
        append_frame(connection, arrow, "bulk_probe")
    assert "aborted" not in str(error.value)
    assert warehouse.query("SELECT count(*) AS n FROM bulk_probe")["n"].iloc[0] == 0
