"""PostgreSQL bulk reads: the binary COPY decoder gives what the CSV form gives, value for value."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from psycopg import sql

from crypto_assets.warehouse import Warehouse, pg_binary
from crypto_assets.warehouse.frames import _copy_csv, _describe, read_arrow, read_frame
from crypto_assets_tests.pg import temporary_database

pytestmark = pytest.mark.postgres

TABLE = """
CREATE TABLE mixed (
    id BIGINT NOT NULL, small SMALLINT, count INTEGER, name VARCHAR, note TEXT,
    price DOUBLE PRECISION, at TIMESTAMPTZ, nothing DOUBLE PRECISION, label TEXT NOT NULL
)
"""


@pytest.fixture(scope="module")
def db() -> Iterator[Warehouse]:
    with temporary_database("crypto_assets_test") as url:
        warehouse = Warehouse(url)
        start = datetime(2025, 3, 4, tzinfo=UTC)
        rows = []
        for i in range(3000):
            # runs of one layout, broken by NULLs, other text lengths, multibyte text and ""
            name = ["BTC-USD", "DOGE-USD", "S001-USD", "ÉTH-€", ""][(i // 700) % 5]
            rows.append(
                {
                    "id": i,
                    "small": None if i % 97 == 0 else i % 300,
                    "count": -i,
                    "name": name,
                    "note": None if i % 500 == 7 else "x" * (i // 100 % 3),
                    "label": ["take_profit", "stop_loss", "timeout"][i % 3],  # varies per row
                    "price": float("nan") if i == 5 else i / 7,
                    "at": None if i % 1000 == 999 else start + timedelta(microseconds=i * 900_000_123),
                }
            )
        with warehouse.begin() as connection:
            connection.exec_driver_sql(TABLE)
            connection.exec_driver_sql(
                "INSERT INTO mixed (id, small, count, name, note, price, at, label) "
                "VALUES (%(id)s, %(small)s, %(count)s, %(name)s, %(note)s, %(price)s, %(at)s, %(label)s)",
                rows,
            )
        yield warehouse
        warehouse.dispose()


COLUMNS = "id, small, count, name, note, price, at, nothing"  # every layout change but `label`


def both_forms(db: Warehouse, query: str, timestamps=("at",)) -> tuple[pa.Table, pa.Table]:
    with db.read() as connection:
        raw = connection.connection.driver_connection
        columns = _describe(raw, sql.SQL(query))
        assert pg_binary.decodable(columns, timestamps)
        statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(sql.SQL(query)).as_bytes(raw)
        binary = pg_binary.decode(pg_binary.copy_bytes(raw, statement), columns)
        csv = _copy_csv(raw, sql.SQL(query), list(timestamps))
    return binary, csv


def test_binary_rows_equal_the_csv_rows(db: Warehouse):
    binary, csv = both_forms(db, f"SELECT {COLUMNS} FROM mixed ORDER BY id")
    assert binary.schema == csv.schema
    assert binary.drop_columns(["price"]).equals(csv.drop_columns(["price"]).combine_chunks())
    # a stored NaN stays NaN (the CSV reader makes it null); pandas sees NaN either way
    assert binary.column("price").to_pylist()[5] != binary.column("price").to_pylist()[5]
    assert binary.to_pandas()["price"].equals(csv.to_pandas()["price"])
    assert binary.num_rows == 3000
    assert binary.column("name").to_pylist()[2800:2801] == [""]  # empty text, its own layout
    assert binary.column("note").null_count == 0  # NULL text reads as "", as the CSV form does
    assert binary.column("nothing").type == pa.null()  # a column of only NULLs, as in CSV


def test_an_empty_result_has_the_csv_form_types(db: Warehouse):
    binary, csv = both_forms(db, "SELECT * FROM mixed WHERE id < 0")
    assert binary.column("label").type == pa.null()
    assert binary.num_rows == csv.num_rows == 0
    assert binary.schema == csv.schema


def test_read_frame_takes_the_binary_path_and_falls_back_for_other_types(db: Warehouse):
    with db.read() as connection:
        frame = read_frame(connection, "SELECT id, at FROM mixed WHERE id < :n", {"n": 3}, timestamps=["at"])
        assert list(frame["id"]) == [0, 1, 2] and str(frame["at"].dtype) == "datetime64[us, UTC]"
        # a boolean and a numeric are not decoded here: the CSV form reads them
        other = read_arrow(connection, "SELECT id > 1 AS big, id::numeric AS n FROM mixed WHERE id < 3")
    assert other.num_rows == 3


def test_a_text_that_changes_length_on_every_row_is_read_as_csv(db: Warehouse):
    with pytest.raises(pg_binary.Undecodable, match="too often"):
        both_forms(db, "SELECT id, label FROM mixed ORDER BY id")
    with db.read() as connection:
        table = read_arrow(connection, "SELECT id, label FROM mixed ORDER BY id")
    assert table.column("label").to_pylist()[:4] == ["take_profit", "stop_loss", "timeout", "take_profit"]


def test_an_error_in_the_query_is_the_driver_error(db: Warehouse):
    import psycopg

    with pytest.raises(psycopg.errors.DivisionByZero), db.read() as connection:
        read_arrow(connection, "SELECT id / 0 AS broken FROM mixed")
