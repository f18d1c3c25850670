"""Read a query result as a DataFrame in bulk: Arrow on DuckDB, COPY on PostgreSQL.

Row-by-row fetching through SQLAlchemy costs about 12 s per million bars; these paths cost a
fraction of it. `query` uses SQLAlchemy-style `:name` placeholders.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from sqlalchemy.engine import Connection

_PLACEHOLDER = re.compile(r"(?<!:):(\w+)")


def read_frame(
    connection: Connection, query: str, params: dict | None = None, *, timestamps=()
) -> pd.DataFrame:
    """Rows of `query` in the caller's transaction; `timestamps` names the TIMESTAMPTZ columns
    (returned as UTC datetimes on both engines)."""
    import pandas as pd

    table = read_arrow(connection, query, params, timestamps=timestamps)
    if table is None:
        return pd.DataFrame()
    frame = table.to_pandas()
    for name in timestamps:
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame


def read_arrow(
    connection: Connection, query: str, params: dict | None = None, *, timestamps=()
) -> pa.Table | None:
    """Rows of `query` as an Arrow table (None when PostgreSQL returned no columns at all);
    `timestamps` columns become `timestamp[us, UTC]` where Arrow can parse them."""
    import pyarrow as pa

    params = params or {}
    raw = connection.connection.driver_connection
    if connection.dialect.name == "duckdb":
        table = raw.sql(_PLACEHOLDER.sub(r"$\1", query), params=params).to_arrow_table()
        utc = pa.timestamp("us", tz="UTC")
        for name in timestamps:
            position = table.schema.get_field_index(name)
            if pa.types.is_timestamp(table.schema.field(position).type):
                table = table.set_column(position, name, table.column(position).cast(utc))
        return table
    return _copy_out(raw, query, params, timestamps)


def _copy_out(raw, query: str, params: dict, timestamps) -> pa.Table | None:
    """PostgreSQL: `COPY (query) TO STDOUT` as CSV, parsed by Arrow (multi-threaded, in C)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    from psycopg import sql

    text = sql.SQL(_PLACEHOLDER.sub(r"{\1}", query.replace("{", "{{").replace("}", "}}"))).format(
        **{name: sql.Literal(value) for name, value in params.items()}
    )
    buffer = io.BytesIO()
    with raw.cursor() as cursor:
        copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(text)
        with cursor.copy(copy_sql) as copy:
            for block in copy:
                buffer.write(block)
    if not buffer.getbuffer().nbytes:
        return None
    # the session runs in UTC, so values look like `2025-03-04 10:15:00+00` (fraction optional)
    for column_type in (pa.timestamp("us", tz="UTC"), pa.string()):
        buffer.seek(0)
        options = pa_csv.ConvertOptions(column_types={name: column_type for name in timestamps})
        try:
            return pa_csv.read_csv(buffer, convert_options=options)
        except pa.ArrowInvalid:  # a form Arrow does not parse: pandas parses the strings
            if not timestamps or column_type == pa.string():
                raise
    raise AssertionError("unreachable")
