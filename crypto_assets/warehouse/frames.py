"""Read a query result as a DataFrame in bulk: Arrow on DuckDB, COPY on PostgreSQL.

Row-by-row fetching through SQLAlchemy costs about 12 s per million bars; these paths cost a
fraction of it. `query` uses SQLAlchemy-style `:name` placeholders.
"""

from __future__ import annotations

import io
import re

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql
from sqlalchemy.engine import Connection

_PLACEHOLDER = re.compile(r"(?<!:):(\w+)")


def read_frame(
    connection: Connection, query: str, params: dict | None = None, *, timestamps=()
) -> pd.DataFrame:
    """Rows of `query` in the caller's transaction; `timestamps` names the TIMESTAMPTZ columns
    (returned as UTC datetimes on both engines)."""
    params = params or {}
    raw = connection.connection.driver_connection
    if connection.dialect.name == "duckdb":
        table = raw.sql(_PLACEHOLDER.sub(r"$\1", query), params=params).to_arrow_table()
        frame = table.to_pandas()
    else:
        text = sql.SQL(_PLACEHOLDER.sub(r"{\1}", query.replace("{", "{{").replace("}", "}}"))).format(
            **{name: sql.Literal(value) for name, value in params.items()}
        )
        buffer = io.BytesIO()
        with raw.cursor() as cursor:
            copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)").format(text)
            with cursor.copy(copy_sql) as copy:
                for block in copy:
                    buffer.write(block)
        buffer.seek(0)
        if not buffer.getbuffer().nbytes:
            return pd.DataFrame()
        options = pa_csv.ConvertOptions(column_types={name: pa.string() for name in timestamps})
        frame = pa_csv.read_csv(buffer, convert_options=options).to_pandas()
    for name in timestamps:
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    return frame
