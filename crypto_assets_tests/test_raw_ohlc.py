"""raw_ohlc materialized through Dagster into a real DuckDB file and a real PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from dagster import DagsterInstance

from crypto_assets.warehouse import Warehouse
from crypto_assets_tests.helpers import materialize_raw, metadata, table_fingerprint

CANDLE_COLUMNS = ["exchange", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]


def test_five_materializations_leave_the_same_table(warehouse_url: str, warehouse: Warehouse):
    fingerprints = set()
    for attempt in range(5):
        result = materialize_raw(warehouse_url, first_day="2025-03-01", last_day="2025-03-03")
        assert result.success
        facts = metadata(result)
        assert facts["reconciles"] is True
        assert facts["rows_in"] == 6 * 3 * 96
        if attempt == 0:
            assert facts["inserted"] == 6 * 3 * 96
        else:
            assert (facts["inserted"], facts["updated"], facts["unchanged"]) == (0, 0, 6 * 3 * 96)
        fingerprints.add(table_fingerprint(warehouse, "raw_ohlc", CANDLE_COLUMNS))
    assert len(fingerprints) == 1
    assert next(iter(fingerprints))[0] == 6 * 3 * 96


def test_partitions_record_each_day_and_coverage_passes(warehouse_url: str):
    result = materialize_raw(warehouse_url, first_day="2025-03-01", last_day="2025-03-02")
    keys = {event.partition for event in result.get_asset_materialization_events()}
    assert keys == {"2025-03-01", "2025-03-02"}
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "symbol_coverage")
    assert check.passed


def test_one_bar_in_four_timestamp_forms_is_one_row(warehouse_url, warehouse, tmp_path: Path):
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "BTC-USD.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2025-09-22 10:00:00,100,110,95,105,3\n"
        "2025-09-22T10:00:00Z,100,110,95,105,3\n"
        "2025-09-22T10:00:00+00:00,100,110,95,105,3\n"
        "1758535200000,100,110,95,105,3\n"
    )
    result = materialize_raw(
        warehouse_url,
        first_day="2025-09-22",
        last_day="2025-09-22",
        source=f"csv:{folder}",
        symbols="BTC-USD",
    )
    assert result.success
    stored = warehouse.query("SELECT symbol, ts, close FROM raw_ohlc")
    assert len(stored) == 1
    assert pd.Timestamp(stored["ts"][0]) == pd.Timestamp("2025-09-22T10:00:00Z")
    facts = metadata(result)
    assert (facts["rows_in"], facts["inserted"], facts["merged_duplicates"]) == (4, 1, 3)


BAD_CSV = """Timestamp,Symbol,Open,High,Low,Close,Volume
2025-09-22T10:00:00Z,BTC-USD,100,110,95,105,3
2025-09-22T10:00:00Z,BTC-USD,100,110,95,105,3
2025-09-22T10:15:00Z,BTC-USD,,110,95,105,3
2025-09-22T10:30:00Z,BTC-USD,0,110,95,105,3
2025-09-22T10:45:00Z,BTC-USD,100,101,95,105,3
2025-09-22T11:00:00Z,BTC-USD,100,110,104,105,3
2025-09-22T11:15:00Z,BTC-USD,100,110,95,105,-3
2025-09-22T11:20:00Z,BTC-USD,100,110,95,105,3
2025-09-22T11:45:00Z,XRP-USD,100,110,95,105,3
22/09/2025 12:00,BTC-USD,100,110,95,105,3
2025-09-22T12:15:00Z,BTC-USD,abc,110,95,105,3
2025-09-22T12:30:00Z,BTC-USD,100,110,95,105,3
2025-09-22T12:30:00Z,BTC-USD,100,110,95,106,3
2025-09-22T12:45:00Z,ETH-USD,10,11,9,10.5,7
"""


def test_every_bad_csv_row_is_quarantined_with_its_reason(warehouse_url, warehouse, tmp_path: Path):
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "mixed.csv").write_text(BAD_CSV)
    for _ in range(2):  # a re-run neither duplicates quarantine rows nor changes counts
        result = materialize_raw(
            warehouse_url,
            first_day="2025-09-22",
            last_day="2025-09-22",
            source=f"csv:{folder}",
            symbols="BTC-USD,ETH-USD",
        )
        assert result.success
    facts = metadata(result)
    quarantine = warehouse.query("SELECT source_ref, reason FROM ohlc_quarantine ORDER BY source_ref")
    reasons = dict(zip(quarantine["source_ref"], quarantine["reason"], strict=True))
    assert reasons == {
        "mixed.csv:line 4": "missing or non-numeric open",
        "mixed.csv:line 5": "non-positive price; low above min(open, close)",
        "mixed.csv:line 6": "high below max(open, close)",
        "mixed.csv:line 7": "low above min(open, close)",
        "mixed.csv:line 8": "negative volume",
        "mixed.csv:line 9": "timestamp not on the 15m grid",
        "mixed.csv:line 10": "unknown symbol XRP-USD: add it to CRYPTO_ASSETS_SYMBOLS",
        "mixed.csv:line 11": "unparseable timestamp '22/09/2025 12:00'",
        "mixed.csv:line 12": "missing or non-numeric open",
        "mixed.csv:line 13": "conflicting values for the same bar",
        "mixed.csv:line 14": "conflicting values for the same bar",
    }
    stored = warehouse.query("SELECT symbol, ts FROM raw_ohlc ORDER BY symbol")
    assert list(stored["symbol"]) == ["BTC-USD", "ETH-USD"]
    input_rows = len(BAD_CSV.strip().splitlines()) - 1
    assert facts["rows_in"] == input_rows == 14
    assert facts["quarantined"] == 11 and facts["merged_duplicates"] == 1
    assert input_rows == len(stored) + facts["quarantined"] + facts["merged_duplicates"]


def test_a_run_narrowed_to_one_symbol_loads_only_it(warehouse_url, warehouse):
    result = materialize_raw(warehouse_url, first_day="2025-03-01", last_day="2025-03-01", only=["SOL-USD"])
    assert result.success
    assert set(warehouse.query("SELECT DISTINCT symbol FROM raw_ohlc")["symbol"]) == {"SOL-USD"}


def test_a_symbol_that_is_not_configured_fails_the_run_by_name(warehouse_url):
    result = materialize_raw(warehouse_url, first_day="2025-03-01", last_day="2025-03-01", only=["XRP-USD"])
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "XRP-USD" in failure.step_failure_data.user_failure_data.description


def test_bars_not_closed_yet_in_todays_partition_are_quarantined(warehouse_url, warehouse, tmp_path: Path):
    now = pd.Timestamp.now(tz="UTC")
    forming = now.floor("15min")
    future = forming + pd.Timedelta(minutes=15)
    rows = [forming] + ([future] if future.date() == now.date() else [])
    folder = tmp_path / "csv"
    folder.mkdir()
    lines = "".join(f"{ts.isoformat()},1,2,0.5,1.5,3\n" for ts in rows)
    (folder / "BTC-USD.csv").write_text("timestamp,open,high,low,close,volume\n" + lines)
    today = now.strftime("%Y-%m-%d")
    result = materialize_raw(
        warehouse_url, first_day=today, last_day=today, source=f"csv:{folder}", symbols="BTC-USD"
    )
    assert result.success
    reasons = list(warehouse.query("SELECT reason FROM ohlc_quarantine ORDER BY ts")["reason"])
    assert reasons[0].startswith("bar still forming")
    assert reasons[1:] == ["timestamp in the future"] * (len(rows) - 1)
    assert warehouse.query("SELECT count(*) AS n FROM raw_ohlc")["n"][0] == 0


def test_new_days_are_appended_together_and_stored_days_upserted_each_alone(
    warehouse_url, warehouse, tmp_path: Path
):
    day = 6 * 96  # bars of the six symbols in one day
    assert materialize_raw(warehouse_url, first_day="2025-03-02", last_day="2025-03-02").success
    instance = DagsterInstance.ephemeral()
    result = materialize_raw(warehouse_url, first_day="2025-03-01", last_day="2025-03-03", instance=instance)
    assert result.success
    facts = metadata(result)
    assert (facts["inserted"], facts["updated"], facts["unchanged"]) == (2 * day, 0, day)
    logs = [event.user_message or "" for event in instance.all_logs(result.run_id)]
    assert [message for message in logs if " written: " in message] == [
        f"2 days 2025-03-01..2025-03-03 written: {2 * day} inserted, 0 updated, 0 unchanged, 0 quarantined",
        f"2025-03-02 written: 0 inserted, 0 updated, {day} unchanged, 0 quarantined",
    ]
    clean_url = f"duckdb:///{tmp_path / 'clean.duckdb'}"
    assert materialize_raw(clean_url, first_day="2025-03-01", last_day="2025-03-03").success
    clean = Warehouse(clean_url)
    expected = table_fingerprint(clean, "raw_ohlc", CANDLE_COLUMNS)
    clean.dispose()
    assert table_fingerprint(warehouse, "raw_ohlc", CANDLE_COLUMNS) == expected
