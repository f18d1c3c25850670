import gzip
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from crypto_assets.errors import UserError
from crypto_assets.ingestion.sources.csv_files import CsvFolderSource
from crypto_assets.market import Timeframe

TF = Timeframe.parse("15m")
DAY = (datetime(2025, 9, 22, tzinfo=UTC), datetime(2025, 9, 23, tzinfo=UTC))


def fetch(folder: Path) -> pd.DataFrame:
    return CsvFolderSource(folder).fetch(["BTC-USD", "ETH-USD"], TF, *DAY).frame


def test_symbol_from_file_name_and_unnamed_index_column(tmp_path: Path):
    (tmp_path / "btc-usd.csv").write_text(",Open,HIGH,low,Close,Volume\n2025-09-22 10:00:00,1,2,0.5,1.5,3\n")
    frame = fetch(tmp_path)
    assert list(frame["symbol"]) == ["BTC-USD"]
    assert frame["ts"][0] == pd.Timestamp("2025-09-22 10:00", tz="UTC")
    assert frame["source_ref"][0] == "btc-usd.csv:line 2"


def test_gzip_and_parquet_with_symbol_column(tmp_path: Path):
    with gzip.open(tmp_path / "a.csv.gz", "wt") as handle:
        handle.write("timestamp,symbol,open,high,low,close,volume\n1758535200,ETH-USD,1,2,0.5,1.5,3\n")
    pd.DataFrame(
        {
            "timestamp": [pd.Timestamp("2025-09-22 11:00", tz="UTC")],
            "symbol": ["BTC-USD"],
            "open": [1.0],
            "high": [2.0],
            "low": [0.5],
            "close": [1.5],
            "volume": [3.0],
        }  # fmt: skip
    ).to_parquet(tmp_path / "b.parquet")
    frame = fetch(tmp_path).sort_values("symbol")
    assert list(frame["symbol"]) == ["BTC-USD", "ETH-USD"]
    assert list(frame["ts"].dt.hour) == [11, 10]


def test_rows_outside_the_window_are_left_for_their_own_partition(tmp_path: Path):
    (tmp_path / "BTC-USD.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2025-09-21T23:45:00Z,1,2,0.5,1.5,3\n2025-09-22T00:00:00Z,1,2,0.5,1.5,3\n"
        "2025-09-23T00:00:00Z,1,2,0.5,1.5,3\nnonsense,1,2,0.5,1.5,3\n"
    )
    frame = fetch(tmp_path)
    assert list(frame["raw_timestamp"]) == ["2025-09-22T00:00:00Z", "nonsense"]


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        (
            "BTC-USD.csv",
            "timestamp,open,high,low,close\n2025-09-22,1,2,0.5,1.5\n",
            "missing column(s) volume",
        ),
        (
            "prices.csv",
            "timestamp,open,high,low,close,volume\n2025-09-22,1,2,0.5,1.5,3\n",
            "no symbol column",
        ),
    ],
)
def test_malformed_files_name_the_file_and_the_fix(tmp_path: Path, name: str, text: str, needle: str):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=re.escape(needle)) as caught:
        CsvFolderSource(tmp_path).preflight()
    assert name in str(caught.value)
    with pytest.raises(UserError, match=re.escape(needle)):
        fetch(tmp_path)


def test_missing_folder_says_which_variable_to_fix(tmp_path: Path):
    with pytest.raises(UserError, match="CRYPTO_ASSETS_SOURCE"):
        CsvFolderSource(tmp_path / "nope").preflight()
