from datetime import UTC, datetime

import pandas as pd

from crypto_assets.ingestion.sources.base import make_frame
from crypto_assets.ingestion.timestamps import to_utc
from crypto_assets.ingestion.validation import validate
from crypto_assets.market import Timeframe

NOW = datetime(2025, 9, 23, tzinfo=UTC)
GOOD = {"open": 100.0, "high": 110.0, "low": 95.0, "close": 105.0, "volume": 3.0}


def frame(rows: list[dict]) -> pd.DataFrame:
    raw = pd.DataFrame([{"symbol": "BTC-USD", **GOOD, **row} for row in rows])
    refs = pd.Series([f"row {i}" for i in range(len(raw))])
    return make_frame(raw["symbol"], to_utc(raw["timestamp"]), raw["timestamp"].astype(str), raw, refs)


def reasons(rows: list[dict]) -> dict[str, str]:
    checked = validate(frame(rows), Timeframe.parse("15m"), ["BTC-USD"], NOW)
    assert checked.reconciles()
    return dict(zip(checked.quarantine["source_ref"], checked.quarantine["reason"], strict=True))


def test_each_rule_names_its_reason():
    found = reasons(
        [
            {"timestamp": "2025-09-22T10:00:00Z"},  # good
            {"timestamp": "2025-09-22T10:15:00Z", "open": None},
            {"timestamp": "2025-09-22T10:30:00Z", "low": -1.0},
            {"timestamp": "2025-09-22T10:45:00Z", "high": 101.0},
            {"timestamp": "2025-09-22T11:00:00Z", "low": 104.0},
            {"timestamp": "2025-09-22T11:15:00Z", "volume": -5.0},
            {"timestamp": "2025-09-22T11:20:00Z"},
            {"timestamp": "2025-09-24T00:00:00Z"},
            {"timestamp": "2025-09-22T20:50:00Z"},
            {"timestamp": "not a time"},
            {"timestamp": "2025-09-22T12:00:00Z", "symbol": "XRP-USD"},
        ]
    )
    assert "row 0" not in found
    assert found["row 1"] == "missing or non-numeric open"
    assert found["row 2"] == "non-positive price"
    assert found["row 3"] == "high below max(open, close)"
    assert found["row 4"] == "low above min(open, close)"
    assert found["row 5"] == "negative volume"
    assert found["row 6"] == "timestamp not on the 15m grid"
    assert found["row 7"] == "timestamp in the future"
    assert found["row 8"] == "timestamp not on the 15m grid"
    assert found["row 9"] == "unparseable timestamp 'not a time'"
    assert found["row 10"] == "unknown symbol XRP-USD: add it to CRYPTO_ASSETS_SYMBOLS"


def test_bar_still_forming_is_not_stored():
    checked = validate(
        frame([{"timestamp": "2025-09-22T23:45:00Z"}]),
        Timeframe.parse("15m"),
        ["BTC-USD"],
        datetime(2025, 9, 22, 23, 50, tzinfo=UTC),
    )
    assert checked.candles.empty
    assert checked.quarantine["reason"].iloc[0].startswith("bar still forming")


def test_exact_duplicates_merge_and_conflicting_ones_are_all_quarantined():
    checked = validate(
        frame(
            [
                {"timestamp": "2025-09-22 10:00:00"},
                {"timestamp": "2025-09-22T10:00:00Z"},  # same bar, same values
                {"timestamp": "2025-09-22T10:15:00Z"},
                {"timestamp": "2025-09-22T10:15:00Z", "close": 106.0},  # same bar, other close
            ]
        ),
        Timeframe.parse("15m"),
        ["BTC-USD"],
        NOW,
    )
    assert len(checked.candles) == 1 and checked.merged == 1
    assert list(checked.quarantine["source_ref"]) == ["row 2", "row 3"]
    assert set(checked.quarantine["reason"]) == {"conflicting values for the same bar"}
    assert checked.reconciles()


def test_several_problems_are_all_named():
    found = reasons([{"timestamp": "2025-09-22T10:07:00Z", "volume": -1.0}])
    assert found["row 0"] == "negative volume; timestamp not on the 15m grid"


def test_a_duplicate_in_a_later_block_of_the_same_symbol_is_merged():
    raw = pd.DataFrame(
        [
            {"symbol": "BTC-USD", "timestamp": "2025-09-22T10:00:00Z", **GOOD},
            {"symbol": "ETH-USD", "timestamp": "2025-09-22T10:00:00Z", **GOOD},
            {"symbol": "BTC-USD", "timestamp": "2025-09-22T10:15:00Z", **GOOD},
            {"symbol": "BTC-USD", "timestamp": "2025-09-22T10:00:00Z", **GOOD},  # BTC again, same bar
        ]
    )
    refs = pd.Series([f"row {i}" for i in range(len(raw))])
    batch = make_frame(raw["symbol"], to_utc(raw["timestamp"]), raw["timestamp"].astype(str), raw, refs)
    checked = validate(batch, Timeframe.parse("15m"), ["BTC-USD", "ETH-USD"], NOW)
    assert checked.merged == 1 and len(checked.candles) == 3 and checked.quarantine.empty
    assert checked.reconciles()
