"""Bulk staging of a DataFrame into a temporary table: Arrow on DuckDB, binary COPY on PostgreSQL.

Staging is the only dialect-specific step; the set-based SQL that follows it is shared.
"""

from __future__ import annotations

import contextlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from sqlalchemy.engine import Connection


@cache
def _arrow_type_for_pg() -> dict[int, pa.DataType]:
    """PostgreSQL column type (OID) -> the Arrow type whose binary COPY encoding that column accepts."""
    import pyarrow as pa

    return {
        16: pa.bool_(),  # boolean
        21: pa.int16(),  # smallint
        23: pa.int32(),  # integer
        20: pa.int64(),  # bigint
        700: pa.float32(),  # real
        701: pa.float64(),  # double precision
        25: pa.string(),  # text
        1043: pa.string(),  # varchar
        1082: pa.date32(),  # date
        1114: pa.timestamp("us"),  # timestamp
        1184: pa.timestamp("us", tz="UTC"),  # timestamptz
    }


#: rows per encoded chunk handed to COPY (bounds the memory of the encoded copy)
_COPY_BATCH_ROWS = 65_536


def stage_frame(connection: Connection, frame: pd.DataFrame | pa.Table, name: str, like_table: str) -> None:
    """Create temporary table `name` with `like_table`'s columns of `frame`, filled from `frame`.

    Call `drop_staged` when done; on PostgreSQL the table also goes at commit.
    """
    import pyarrow as pa

    column_list = ", ".join(frame.column_names if isinstance(frame, pa.Table) else frame.columns)
    if connection.dialect.name == "duckdb":
        connection.exec_driver_sql(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {column_list} FROM {like_table} LIMIT 0"
        )
    else:
        connection.exec_driver_sql(
            f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {column_list} FROM {like_table} LIMIT 0"
        )
    append_frame(connection, frame, name)


def append_frame(connection: Connection, frame: pd.DataFrame | pa.Table, table: str) -> None:
    """Append `frame` to `table` in one bulk statement: Arrow scan on DuckDB, binary COPY on PostgreSQL."""
    import pyarrow as pa

    arrow = frame if isinstance(frame, pa.Table) else to_arrow(frame)
    column_list = ", ".join(arrow.column_names)
    if connection.dialect.name == "duckdb":
        import duckdb  # loaded already by the DuckDB dialect; not imported for PostgreSQL users

        raw = connection.connection.driver_connection
        view = f"{table}_arrow"
        raw.register(view, arrow)
        try:
            connection.exec_driver_sql(
                f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {view}"
            )
        finally:
            # after a failed insert the transaction is aborted and unregister fails too: the
            # insert's own error is the one to report
            with contextlib.suppress(duckdb.Error):
                raw.unregister(view)
        return
    _copy_binary(connection, arrow, table)


def _copy_binary(connection: Connection, arrow: pa.Table, table: str) -> None:
    """COPY in PostgreSQL's binary format, encoded from Arrow by pgpq: no value is printed as text
    and parsed back. Binary COPY converts nothing, so each column is first cast (safely: overflow
    raises) to the Arrow type matching the table's column."""
    import pyarrow as pa
    from pgpq import ArrowToPostgresBinaryEncoder

    column_list = ", ".join(arrow.column_names)
    cursor = connection.connection.driver_connection.cursor()
    cursor.execute(f"SELECT {column_list} FROM {table} LIMIT 0")
    fields = []
    for column in cursor.description:
        arrow_type = _arrow_type_for_pg().get(column.type_code)
        if arrow_type is None:
            raise TypeError(f"{table}.{column.name}: type oid {column.type_code} has no binary COPY mapping")
        fields.append(pa.field(column.name, arrow_type))
    arrow = arrow.cast(pa.schema(fields))
    encoder = ArrowToPostgresBinaryEncoder(arrow.schema)
    with cursor.copy(f"COPY {table} ({column_list}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(encoder.write_header())
        for batch in arrow.to_batches(max_chunksize=_COPY_BATCH_ROWS):
            copy.write(encoder.write_batch(batch))
        copy.write(encoder.finish())


def drop_staged(connection: Connection, name: str) -> None:
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Arrow table with microsecond UTC timestamps (what both engines store)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for field in table.schema:
        if pa.types.is_timestamp(field.type):
            fields.append(pa.field(field.name, pa.timestamp("us", tz="UTC")))
        elif pa.types.is_large_string(field.type) or pa.types.is_string_view(field.type):
            fields.append(pa.field(field.name, pa.string()))
        else:
            fields.append(field)
    return table.cast(pa.schema(fields))
