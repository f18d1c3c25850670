"""Bulk staging of a DataFrame into a temporary table: Arrow on DuckDB, COPY on PostgreSQL.

Staging is the only dialect-specific step; the set-based SQL that follows it is shared.
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy.engine import Connection


def stage_frame(connection: Connection, frame: pd.DataFrame | pa.Table, name: str, like_table: str) -> None:
    """Create temporary table `name` with `like_table`'s columns of `frame`, filled from `frame`.

    Call `drop_staged` when done; on PostgreSQL the table also goes at commit.
    """
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
    """Append `frame` to `table` in one bulk statement: Arrow scan on DuckDB, COPY on PostgreSQL."""
    arrow = frame if isinstance(frame, pa.Table) else to_arrow(frame)
    column_list = ", ".join(arrow.column_names)
    if connection.dialect.name == "duckdb":
        raw = connection.connection.driver_connection
        view = f"{table}_arrow"
        raw.register(view, arrow)
        try:
            connection.exec_driver_sql(
                f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {view}"
            )
        finally:
            raw.unregister(view)
        return
    buffer = io.BytesIO()
    pa_csv.write_csv(arrow, buffer, pa_csv.WriteOptions(include_header=False))
    cursor = connection.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table} ({column_list}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getbuffer())


def drop_staged(connection: Connection, name: str) -> None:
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Arrow table with microsecond UTC timestamps (what both engines store)."""
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
