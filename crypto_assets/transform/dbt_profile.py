"""How dbt reaches the warehouse: the one place that turns CRYPTO_ASSETS_WAREHOUSE_URL (and the
base timeframe) into dbt's environment and arguments.

dbt_project/profiles.yml reads only the `DBT_WAREHOUSE_*` variables built here. The Dagster
asset (crypto_assets.transform.assets), the manifest preparation (crypto_assets.transform.project)
and the by-hand command line (`python -m crypto_assets.transform`) all use these functions, so
the three cannot disagree about which database dbt writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from crypto_assets.errors import UserError
from crypto_assets.market import Timeframe
from crypto_assets.warehouse.engine import normalize_url

TARGET_ENV = "DBT_WAREHOUSE_TARGET"
DUCKDB_PATH_ENV = "DBT_WAREHOUSE_DUCKDB_PATH"
PG_ENV = {
    "host": "DBT_WAREHOUSE_PG_HOST",
    "port": "DBT_WAREHOUSE_PG_PORT",
    "user": "DBT_WAREHOUSE_PG_USER",
    # dbt masks the values of DBT_ENV_SECRET_* variables in its logs
    "password": "DBT_ENV_SECRET_WAREHOUSE_PG_PASSWORD",
    "dbname": "DBT_WAREHOUSE_PG_DBNAME",
    "sslmode": "DBT_WAREHOUSE_PG_SSLMODE",
}
# Session settings of every dbt connection: UTC, and no JIT. PostgreSQL's JIT compiles the
# incremental queries for about 2 s (their row estimates are high) to save nothing on the few
# hundred rows they touch; measured here it made an incremental model 6x slower.
DBT_PGOPTIONS = "-c TimeZone=UTC -c jit=off"


def warehouse_env(warehouse_url: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables profiles.yml reads, for the warehouse at `warehouse_url`."""
    environ = os.environ if environ is None else environ
    url = normalize_url(warehouse_url)
    if url.get_backend_name() == "duckdb":
        database = url.database
        if not database or database == ":memory:":
            raise UserError(
                f"CRYPTO_ASSETS_WAREHOUSE_URL={url.render_as_string(hide_password=True)!r}: dbt "
                "needs a DuckDB file, not an in-memory database; use duckdb:///path/warehouse.duckdb"
            )
        return {TARGET_ENV: "duckdb", DUCKDB_PATH_ENV: str(Path(database).expanduser().absolute())}
    unknown = sorted(set(url.query) - {"sslmode"})
    if unknown:
        raise UserError(
            f"CRYPTO_ASSETS_WAREHOUSE_URL has options dbt cannot pass on ({', '.join(unknown)}): "
            "only sslmode is supported for the dbt models"
        )
    sslmode = url.query.get("sslmode", "prefer")
    # libpq reads PGOPTIONS, so every connection dbt opens gets these session settings
    options = " ".join(part for part in (environ.get("PGOPTIONS", "").strip(), DBT_PGOPTIONS) if part)
    return {
        TARGET_ENV: "postgres",
        PG_ENV["host"]: url.host or "localhost",
        PG_ENV["port"]: str(url.port or 5432),
        PG_ENV["user"]: url.username or "postgres",
        PG_ENV["password"]: url.password or "",
        PG_ENV["dbname"]: url.database or "postgres",
        PG_ENV["sslmode"]: sslmode if isinstance(sslmode, str) else sslmode[-1],
        "PGOPTIONS": options,
    }


def dbt_vars(base_timeframe: Timeframe | str) -> dict[str, str]:
    """The dbt vars every invocation passes (dbt_project.yml documents them)."""
    name = (
        base_timeframe.name if isinstance(base_timeframe, Timeframe) else Timeframe.parse(base_timeframe).name
    )
    return {"base_timeframe": name}


def vars_args(base_timeframe: Timeframe | str) -> list[str]:
    return ["--vars", json.dumps(dbt_vars(base_timeframe))]


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the duration of the block, then restore what was there.

    dagster-dbt starts dbt with a copy of os.environ and loads the profile in-process, so the
    derived variables have to be in os.environ while an invocation is being started.
    """
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
