"""The dbt models built through Dagster on both warehouses, compared with pandas.

Raw bars are written straight into raw_ohlc so each case shapes exactly what it needs:
symbols whose newest bars differ, the same symbol on two exchanges, a day with a hole, a
still-open newest bucket, and rows of another timeframe the models must ignore. Each dbt
invocation costs several seconds, so each test batches its assertions per invocation.
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import psycopg
import pytest
from dagster import instance_for_test
from psycopg import sql

from crypto_assets.market import Timeframe
from crypto_assets.transform.assets import Transform, build_transform
from crypto_assets.transform.dbt_profile import warehouse_env
from crypto_assets.transform.launcher import HANDOFF
from crypto_assets.transform.project import DbtSetup
from crypto_assets.warehouse import Warehouse
from crypto_assets_tests.dbt_helpers import (
    BASE,
    RESAMPLED,
    RESAMPLED_COLUMNS,
    WINDOW_COLUMNS,
    WINDOWS,
    assert_frames_equal,
    build_models,
    checks_by_key,
    pandas_resample,
    pandas_window,
    raw_bars,
    read_model,
    synthetic_bars,
    write_bars,
)
from crypto_assets_tests.pg import postgres_admin_url, scratch_database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def dbt_transform() -> Transform:
    """The dbt assets for base timeframe 15m; prepares the manifest once if it is missing."""
    return build_transform(DbtSetup(BASE), "duckdb:///unused.duckdb")


LONG_AGO = datetime(2025, 1, 1, tzinfo=UTC)


def initial_history() -> pd.DataFrame:
    """Four series whose newest bars all differ; SOL-USD has a hole on 2025-02-26."""
    btc = synthetic_bars("BTC-USD", "2025-02-20", "2025-03-01")  # 9 whole days
    eth = synthetic_bars("ETH-USD", "2025-02-20", "2025-02-28 13:45")  # ends inside an hour
    sol = synthetic_bars("SOL-USD", "2025-02-24", "2025-02-27 20:15")
    hole = (sol["ts"] >= "2025-02-26 09:30") & (sol["ts"] < "2025-02-26 13:15")
    sol = sol[~hole]
    other = synthetic_bars("BTC-USD", "2025-02-25", "2025-02-28 06:00", exchange="other")
    hourly = synthetic_bars("ETH-USD", "2025-02-20", "2025-02-22", timeframe=Timeframe.parse("1h"))
    return pd.concat([btc, eth, sol, other, hourly], ignore_index=True)


def assert_models_match_pandas(warehouse: Warehouse) -> None:
    raw = raw_bars(warehouse)
    for table, seconds in RESAMPLED.items():
        expected = pandas_resample(raw, table, seconds)
        assert_frames_equal(read_model(warehouse, table, RESAMPLED_COLUMNS), expected, table)
    for table, hours in WINDOWS.items():
        expected = pandas_window(raw, hours)
        assert_frames_equal(read_model(warehouse, table, WINDOW_COLUMNS), expected, table)


def test_models_equal_pandas_and_incremental_equals_full_refresh(
    dbt_transform, warehouse_url: str, warehouse: Warehouse
):
    write_bars(warehouse, initial_history(), loaded_at=LONG_AGO)

    first = build_models(dbt_transform, warehouse_url)
    assert first.success
    checks = checks_by_key(first)
    assert checks and all(c.passed for c in checks.values()), [k for k, c in checks.items() if not c.passed]
    assert_models_match_pandas(warehouse)
    materialized = {e.asset_key.to_user_string(): e for e in first.get_asset_materialization_events()}
    assert set(materialized) == set(RESAMPLED) | set(WINDOWS)
    assert materialized["ohlc_today"].materialization.metadata["dagster/row_count"].value == len(
        read_model(warehouse, "ohlc_today", WINDOW_COLUMNS)
    )

    # what the reference says about the hole and the open buckets, spelled out once
    hour = read_model(warehouse, "ohlc_1h", RESAMPLED_COLUMNS).set_index(["exchange", "symbol", "ts"])
    sol_hole = hour.loc[("synthetic", "SOL-USD", pd.Timestamp("2025-02-26 09:00", tz="UTC"))]
    assert (sol_hole["bar_count"], sol_hole["is_complete"], sol_hole["is_closed"]) == (2, False, True)
    eth_last = hour.loc[("synthetic", "ETH-USD", pd.Timestamp("2025-02-28 13:00", tz="UTC"))]
    assert (eth_last["bar_count"], eth_last["is_closed"]) == (3, False)
    assert not (hour["timeframe"] != "1h").any()
    today = read_model(warehouse, "ohlc_today", WINDOW_COLUMNS)
    assert today.groupby(["exchange", "symbol"]).size().to_dict() == {
        ("other", "BTC-USD"): 96, ("synthetic", "BTC-USD"): 96,
        ("synthetic", "ETH-USD"): 96, ("synthetic", "SOL-USD"): 96,
    }  # fmt: skip

    # A marker an incremental run must leave alone: an old bucket of a symbol that gets new bars.
    with warehouse.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE ohlc_1h SET high = high + 1000 WHERE exchange = 'synthetic' AND symbol = 'BTC-USD' "
            "AND ts = CAST('2025-02-20 00:00:00+00' AS TIMESTAMPTZ)"
        )

    # New data: one more bar for BTC, ETH's open hour filled and continued, SOL's hole backfilled
    # (a day back), and a corrected close of an old ETH bar (an upsert that changes a value).
    btc_next = synthetic_bars("BTC-USD", "2025-03-01", "2025-03-01 00:15")
    eth_next = synthetic_bars("ETH-USD", "2025-02-28 13:45", "2025-02-28 15:30")
    sol_hole = synthetic_bars("SOL-USD", "2025-02-26 09:30", "2025-02-26 13:15")
    eth_fix = synthetic_bars("ETH-USD", "2025-02-21 10:00", "2025-02-21 10:15")
    eth_fix["close"] = eth_fix["low"]
    write_bars(warehouse, pd.concat([btc_next, eth_next, sol_hole, eth_fix], ignore_index=True))

    incremental = build_models(dbt_transform, warehouse_url)
    assert incremental.success
    after_incremental = {t: read_model(warehouse, t, RESAMPLED_COLUMNS) for t in RESAMPLED}
    hour = after_incremental["ohlc_1h"]
    marker = (hour["exchange"] == "synthetic") & (hour["symbol"] == "BTC-USD") & (hour["ts"] == "2025-02-20")
    reference = pandas_resample(raw_bars(warehouse), "ohlc_1h", 3600)
    assert hour.loc[marker, "high"].item() == reference.loc[marker, "high"].item() + 1000, (
        "the incremental run rebuilt an old bucket of a symbol it only had to extend"
    )

    full = build_models(dbt_transform, warehouse_url, full_refresh=True)
    assert full.success
    for table in RESAMPLED:
        rebuilt = read_model(warehouse, table, RESAMPLED_COLUMNS)
        incremental_rows = after_incremental[table]
        if table == "ohlc_1h":  # the marker is the only difference
            incremental_rows.loc[marker, "high"] = rebuilt.loc[marker, "high"]
        assert_frames_equal(incremental_rows, rebuilt, f"{table} incremental vs full refresh")
    assert_models_match_pandas(warehouse)
    if warehouse.dialect == "postgresql":
        assert_postgres_indexes(warehouse)


def assert_postgres_indexes(warehouse: Warehouse) -> None:
    indexes = warehouse.query("SELECT tablename, indexdef FROM pg_indexes WHERE tablename LIKE 'ohlc_%'")
    by_table = indexes.groupby("tablename")["indexdef"].apply(" | ".join).to_dict()
    for table in WINDOWS:
        assert "(symbol, ts)" in by_table[table], by_table
    for table in RESAMPLED:
        assert "UNIQUE INDEX" in by_table[table] and "(exchange, symbol, timeframe, ts)" in by_table[table]


def test_a_failing_dbt_test_is_a_failed_asset_check(dbt_transform, warehouse_url: str, warehouse: Warehouse):
    bars = synthetic_bars("BTC-USD", "2025-03-01", "2025-03-02")
    # validation would quarantine this bar; written directly, it makes every bucket's volume negative
    bars.loc[bars.index[-1], "volume"] = -1e15
    write_bars(warehouse, bars)

    result = build_models(dbt_transform, warehouse_url)

    assert not result.success
    checks = checks_by_key(result)
    failed = {key for key, check in checks.items() if not check.passed}
    assert failed == {(table, "volume_non_negative") for table in [*RESAMPLED, *WINDOWS]}
    assert all(checks[key].severity.value == "ERROR" for key in failed)
    assert len(checks) == 25
    [failure] = result.get_step_failure_events()
    assert "volume_non_negative" in failure.step_failure_data.user_failure_data.description


def test_a_dbt_run_hands_the_warehouse_to_dbt_alone(
    dbt_transform,
    warehouse_url: str,
    warehouse: Warehouse,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    """The profile's variables (the warehouse password among them) reach the dbt process only:
    never this process's os.environ, which every thread and subprocess of a run shares, not even
    for the moment dbt starts; and no copy of them is left on disk."""
    write_bars(warehouse, synthetic_bars("BTC-USD", "2025-03-01", "2025-03-02"))
    written: list[str] = []
    set_item = os._Environ.__setitem__

    def recording_set_item(environ, name, value):
        written.append(name)
        set_item(environ, name, value)

    monkeypatch.setattr(os._Environ, "__setitem__", recording_set_item)
    before = dict(os.environ)
    caplog.set_level(logging.INFO)

    result = build_models(dbt_transform, warehouse_url)

    assert result.success
    assert int(warehouse.query("SELECT count(*) AS n FROM ohlc_1h")["n"].iloc[0]) == 24
    dbt_variables = {*warehouse_env(warehouse_url), "DBT_TARGET_PATH", "DBT_PROFILES_DIR", "DBT_PROJECT_DIR"}
    assert not dbt_variables & set(written), f"set in os.environ: {sorted(dbt_variables & set(written))}"
    assert dict(os.environ) == before
    # this run's own folder (another test process may be running dbt beside it)
    assert not list(DbtSetup(BASE).target_dir.glob(f"transform_dbt-{result.run_id[:8]}-*/{HANDOFF}"))
    assert list(DbtSetup(BASE).target_dir.glob(f"transform_dbt-{result.run_id[:8]}-*"))
    # the dbt adapter dagster-dbt would load in this process (transform/resources.py) stays unloaded
    assert "dbt adapter" not in caplog.text


@pytest.mark.postgres
def test_the_warehouse_password_reaches_dbt_and_no_log(dbt_transform, caplog: pytest.LogCaptureFixture):
    """As a role that logs in with a password: dbt connects as that role, and the password is in
    none of the run's logs nor any file dbt leaves in its target folder. (Where the server checks
    passwords, dbt connecting also proves the password reached it; a `trust` server does not.)"""
    admin = postgres_admin_url()
    role, password = f"crypto_assets_dbt_{secrets.token_hex(4)}", secrets.token_hex(16)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
    try:
        with scratch_database(admin, "crypto_assets_test") as admin_url:
            parts = urlsplit(admin_url)
            with psycopg.connect(admin_url, autocommit=True) as connection:
                connection.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        sql.Identifier(parts.path.lstrip("/")), sql.Identifier(role)
                    )
                )
            netloc = f"{role}:{password}@{parts.hostname}:{parts.port or 5432}"
            url = urlunsplit(parts._replace(netloc=netloc))
            warehouse = Warehouse(url)
            try:
                write_bars(warehouse, synthetic_bars("BTC-USD", "2025-03-01", "2025-03-02"))
                caplog.set_level(logging.DEBUG)
                with instance_for_test() as instance:
                    result = build_models(dbt_transform, url, instance=instance)
                    messages = [entry.message for entry in instance.all_logs(result.run_id)]
                assert result.success
                built = warehouse.query("SELECT tableowner FROM pg_tables WHERE tablename = 'ohlc_1h'")
                assert built["tableowner"].tolist() == [role]
            finally:
                warehouse.dispose()
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    assert messages and not [m for m in messages if password in m]
    assert password not in caplog.text
    [folder] = DbtSetup(BASE).target_dir.glob(f"transform_dbt-{result.run_id[:8]}-*")
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert any(path.name == "dbt.log" for path in files)
    assert not [path.name for path in files if password.encode() in path.read_bytes()]
