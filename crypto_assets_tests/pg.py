"""PostgreSQL helpers for tests: find the test server, and create a throw-away database on it.

The server is named by CRYPTO_ASSETS_TEST_POSTGRES_URL (a libpq URL such as
``postgresql://postgres@127.0.0.1:5432/postgres``). Without it, PostgreSQL tests skip; under
CI=true (where PostgreSQL is required) they fail instead, and so does a server that was named
but cannot be reached.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

URL_ENV = "CRYPTO_ASSETS_TEST_POSTGRES_URL"
EXAMPLE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,40}")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


@functools.cache
def _probe(url: str) -> str | None:
    """None when the server answers, else why not (checked once per process)."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip()}"
    return None


def postgres_admin_url() -> str:
    """URL of the test server (a role allowed to CREATE DATABASE), or skip/fail the test."""
    import pytest  # here, not at the top: benchmarks import this module without the test framework

    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        message = f"{URL_ENV} is not set (e.g. {URL_ENV}={EXAMPLE_URL})"
        if _in_ci():
            pytest.fail(f"{message}; CI=true requires PostgreSQL", pytrace=False)
        pytest.skip(f"PostgreSQL test: {message}")
    problem = _probe(url)
    if problem is not None:
        pytest.fail(f"PostgreSQL at {URL_ENV}={redact(url)} is unreachable: {problem}", pytrace=False)
    return url


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def dagster_pg_env(url: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables that deploy/dagster.yaml reads, for the database at `url`."""
    parts = urlsplit(url)
    return {
        "DAGSTER_PG_HOST": parts.hostname or "localhost",
        "DAGSTER_PG_PORT": str(parts.port or 5432),
        "DAGSTER_PG_USER": unquote(parts.username or "postgres"),
        "DAGSTER_PG_PASSWORD": unquote(parts.password or ""),
        "DAGSTER_PG_DB": parts.path.lstrip("/"),
    }


def sqlalchemy_url(url: str) -> str:
    """A libpq URL as a SQLAlchemy URL using psycopg 3."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


@contextmanager
def temporary_database(prefix: str) -> Iterator[str]:
    """Create a fresh database `<prefix>_<random>` on the test server; yield its URL; drop it."""
    with scratch_database(postgres_admin_url(), prefix) as url:
        yield url


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """Create database `<prefix>_<random>` on the server at `admin_url` (a role allowed to create
    databases); yield its URL; drop it, also when the block fails. Tests and benchmarks use it."""
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"database prefix {prefix!r}: use lowercase letters, digits, _")
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def redact(url: str) -> str:
    """`url` with its password, if any, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
