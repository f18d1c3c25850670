import numpy as np
import pandas as pd

from crypto_assets.ingestion.timestamps import to_utc

BAR = pd.Timestamp("2025-09-22 10:00:00", tz="UTC")


def test_every_documented_form_is_the_same_utc_instant():
    forms = [
        "2025-09-22 10:00:00",
        "2025-09-22T10:00:00Z",
        "2025-09-22T10:00:00+00:00",
        "2025-09-22T12:00:00+02:00",
        "2025-09-22 10:00:00.000+0000",
        "1758535200000",
        "1758535200",
    ]
    assert (to_utc(pd.Series(forms)) == BAR).all()


def test_numeric_epochs_in_seconds_and_milliseconds():
    parsed = to_utc(pd.Series([1758535200000, 1758535200, np.nan]))
    assert list(parsed[:2]) == [BAR, BAR]
    assert pd.isna(parsed[2])


def test_dates_are_midnight_utc():
    assert to_utc(pd.Series(["2025-09-22"]))[0] == pd.Timestamp("2025-09-22", tz="UTC")


def test_ambiguous_or_garbage_timestamps_are_not_guessed():
    parsed = to_utc(pd.Series(["22/09/2025 10:00", "09/10/2025", "yesterday", "", None]))
    assert parsed.isna().all()
