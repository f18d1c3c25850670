"""Open the warehouse named by a SQLAlchemy URL: DuckDB (embedded) or PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from crypto_assets.errors import UserError

if TYPE_CHECKING:  # SQLAlchemy and pandas load on first use, not with the code location
    import pandas as pd
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine


def normalize_url(url: str) -> sa.URL:
    """Parse a warehouse URL; plain `postgresql://` uses psycopg 3, the driver we bulk-load with."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(
            f"CRYPTO_ASSETS_WAREHOUSE_URL={url!r} is not a SQLAlchemy URL: use "
            "duckdb:///path/warehouse.duckdb or postgresql://user@host:5432/db"
        ) from None
    if parsed.get_backend_name() == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "duckdb":
        return parsed
    raise UserError(
        f"warehouse {parsed.get_backend_name()!r} is not supported: use a duckdb:/// or "
        "postgresql:// URL in CRYPTO_ASSETS_WAREHOUSE_URL"
    )


class WarehouseBusy(UserError):
    """The DuckDB file is held by another process that writes it (DuckDB allows one writer per
    file): reading it has to wait until that process is done."""


class Warehouse:
    """A connection factory plus the few dialect facts the rest of the code needs.

    DuckDB allows one writing process per file, so DuckDB connections are opened per use
    (no pool holding the file lock) and read-only where the caller only reads.

    Use it as a context manager (`with Warehouse(url) as db:`): leaving the block disposes the
    engine. A DuckDB engine still alive at interpreter exit makes DuckDB's bindings print a
    "leaked instance" report.
    """

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def is_duckdb(self) -> bool:
        return self.dialect == "duckdb"

    def describe(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @cached_property
    def engine(self) -> Engine:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        if self.is_duckdb:
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            return sa.create_engine(self.url, poolclass=NullPool)
        return sa.create_engine(self.url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"})

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        with self._translate_errors(), self.engine.begin() as connection:
            if self.is_duckdb:
                connection.exec_driver_sql("SET TimeZone = 'UTC'")
            yield connection

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """One connection for several transactions (`with connection.begin():` each).

        On DuckDB it holds the file (and its lock) until the block ends, instead of reopening the
        database, and checkpointing it on close, once per transaction.
        """
        with self._translate_errors(), self.engine.connect() as connection:
            if self.is_duckdb:
                connection.exec_driver_sql("SET TimeZone = 'UTC'")
                # Commit each transaction to the write-ahead log (still synced: durable) rather
                # than checkpointing the whole file per commit, which DuckDB does by default for
                # transactions over ~100 kB; the file is checkpointed once when the session ends.
                connection.exec_driver_sql("SET auto_checkpoint_skip_wal_threshold = 1000000000")
                connection.exec_driver_sql("SET checkpoint_threshold = '1GB'")
                connection.commit()
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for queries only (read-only on DuckDB when the file exists)."""
        if self.is_duckdb and self._duckdb_file_exists():
            import sqlalchemy as sa
            from sqlalchemy.pool import NullPool

            engine = sa.create_engine(self.url, poolclass=NullPool, connect_args={"read_only": True})
            try:
                with self._translate_errors(), engine.connect() as connection:
                    connection.exec_driver_sql("SET TimeZone = 'UTC'")
                    yield connection
            finally:
                engine.dispose()
            return
        with self.begin() as connection:
            yield connection

    def query(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        import pandas as pd
        import sqlalchemy as sa

        with self.read() as connection:
            result = connection.execute(sa.text(sql), params or {})
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def has_table(self, name: str) -> bool:
        """Whether table `name` exists; never creates a DuckDB file that does not exist yet."""
        import sqlalchemy as sa

        if self.is_duckdb and not self._duckdb_file_exists():
            return False
        with self.read() as connection:
            return sa.inspect(connection).has_table(name)

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
            del self.__dict__["engine"]

    def _duckdb_file_exists(self) -> bool:
        database = self.url.database
        return bool(database) and database != ":memory:" and Path(database).exists()

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        from sqlalchemy.exc import OperationalError

        try:
            yield
        except OperationalError as error:
            first_line = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            if self.is_duckdb and "could not set lock" in first_line.lower():
                pid = re.search(r"\(PID (\d+)\)", first_line)
                raise WarehouseBusy(
                    f"the warehouse {self.describe()} is held by "
                    f"{f'process {pid.group(1)}' if pid else 'another process'}, which is writing it "
                    "(DuckDB allows one writer per file); try again when it is done"
                ) from error
            if "connect" in str(error).lower() or "could not" in str(error).lower():
                raise UserError(
                    f"cannot reach the warehouse {self.describe()}: {first_line}; check "
                    "CRYPTO_ASSETS_WAREHOUSE_URL and that the server is running"
                ) from error
            raise
