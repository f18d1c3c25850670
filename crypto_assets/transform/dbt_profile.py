"""How dbt reaches the warehouse: the one place that turns a warehouse URL
(CRYPTO_ASSETS_WAREHOUSE_URL, or the `warehouse` resource's) into the variables of dbt's profile.

dbt_project/profiles.yml reads only the `DBT_WAREHOUSE_*` variables built here. The Dagster
asset, the manifest preparation and the by-hand command line all get them through
`crypto_assets.transform.project.DbtSetup`, so the three cannot disagree about which database
dbt writes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from crypto_assets.errors import UserError
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
