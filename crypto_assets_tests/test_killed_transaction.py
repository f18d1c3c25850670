"""A process killed inside the grouped append of new days (rows inserted, not committed) leaves the
warehouse exactly as it was and usable; the next load ends like a clean one.

The kill is placed deterministically: the child process replaces the quarantine write, which runs
after the candles' insert in the same transaction, with a SIGKILL of itself. The append is large
enough (172,800 rows) for DuckDB to write row groups to the file before commit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crypto_assets.ingestion.load import load_window
from crypto_assets.ingestion.sources.synthetic import SyntheticSource
from crypto_assets.market import Timeframe
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.schema import ensure_ingestion_tables
from crypto_assets_tests.helpers import table_fingerprint

SYMBOLS = [f"S{i:02d}-USD" for i in range(60)]
COLUMNS = ["exchange", "symbol", "timeframe", "ts", "open", "high", "low", "close", "volume"]
FIRST = datetime(2025, 3, 1, tzinfo=UTC)
STORED_END = datetime(2025, 3, 3, tzinfo=UTC)  # two days stored before the killed load
END = datetime(2025, 4, 2, tzinfo=UTC)  # then 30 new days: 172,800 rows in one append

_CHILD = """
import os, signal, sys
import crypto_assets.ingestion.load as load
from crypto_assets_tests.test_killed_transaction import load_all

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

load.upsert_quarantine = die  # runs after the candles' insert, before the commit
load_all(sys.argv[1])
"""


def load_all(url: str, end: datetime = END) -> None:
    with Warehouse(url) as warehouse:
        load_window(
            warehouse,
            SyntheticSource(),
            symbols=SYMBOLS,
            known_symbols=SYMBOLS,
            timeframe=Timeframe.parse("15m"),
            start=FIRST,
            end=end,
            now=datetime(2025, 6, 1, tzinfo=UTC),
        )


@pytest.mark.slow
def test_killed_inside_the_grouped_append_leaves_the_table_as_it_was(
    warehouse_url: str, warehouse: Warehouse, tmp_path: Path
):
    with warehouse.begin() as connection:
        ensure_ingestion_tables(connection)
    load_all(warehouse_url, end=STORED_END)  # two days stored; 30 new days follow
    before = table_fingerprint(warehouse, "raw_ohlc", COLUMNS)
    assert before[0] == 2 * 60 * 96
    warehouse.dispose()  # this process holds no engine while the child writes the warehouse

    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHILD), warehouse_url],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert child.returncode == -9, child.stderr  # killed by its own SIGKILL, mid-transaction

    assert table_fingerprint(warehouse, "raw_ohlc", COLUMNS) == before
    load_all(warehouse_url)
    clean_url = f"duckdb:///{tmp_path / 'clean.duckdb'}"
    with Warehouse(clean_url) as db, db.begin() as connection:
        ensure_ingestion_tables(connection)
    load_all(clean_url)
    with Warehouse(clean_url) as clean:
        expected = table_fingerprint(clean, "raw_ohlc", COLUMNS)
    assert expected[0] == 32 * 60 * 96
    assert table_fingerprint(warehouse, "raw_ohlc", COLUMNS) == expected
