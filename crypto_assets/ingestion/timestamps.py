"""Turn every timestamp form a source may send into UTC bar-open times.

Accepted: ISO-8601 with or without offset (naive means UTC), `YYYY-MM-DD` dates, epoch
seconds and epoch milliseconds (told apart by magnitude). `2025-09-22 10:00:00`,
`2025-09-22T10:00:00Z`, `2025-09-22T10:00:00+00:00` and `1758535200000` are the same bar.
Anything else becomes NaT, and validation quarantines the row.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# Epoch values above this are milliseconds: 1e11 seconds is the year 5138.
_MS_THRESHOLD = 1e11
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?$")


def to_utc(values: pd.Series) -> pd.Series:
    """Parse a column of mixed timestamp forms into `datetime64[ns, UTC]`, NaT where unparseable."""
    values = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return _nanos_to_series(_epoch_nanos(values.to_numpy(dtype="float64", na_value=np.nan)))

    text = values.astype(object).where(values.notna(), "").astype(str).str.strip()
    nanos = np.full(len(text), _NAT, dtype="int64")
    is_number = text.str.fullmatch(r"-?\d+(\.\d+)?").to_numpy(dtype=bool, na_value=False)
    if is_number.any():
        nanos[is_number] = _epoch_nanos(pd.to_numeric(text[is_number]).to_numpy(dtype="float64"))
    rest = ~is_number & (text != "").to_numpy(dtype=bool)
    if rest.any():
        parsed = pd.to_datetime(text[rest], utc=True, errors="coerce", format="ISO8601")
        rest_nanos = parsed.astype("datetime64[ns, UTC]").to_numpy(dtype="datetime64[ns]").view("int64")
        # Forms ISO8601 cannot read in one pass (a mixed column): retry each leftover alone.
        for position in np.flatnonzero(rest_nanos == _NAT):
            rest_nanos[position] = _parse_one(text[rest].iloc[position])
        nanos[rest] = rest_nanos
    return _nanos_to_series(nanos)


_NAT = np.iinfo("int64").min


def _nanos_to_series(nanos: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(nanos.view("datetime64[ns]"), utc=True))


def _epoch_nanos(numbers: np.ndarray) -> np.ndarray:
    finite = np.isfinite(numbers)
    seconds_scale = np.where(np.abs(numbers) >= _MS_THRESHOLD, 1e6, 1e9)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.round(numbers * seconds_scale)
    ok = finite & (np.abs(scaled) < 9.2e18)
    out = np.full(len(numbers), _NAT, dtype="int64")
    out[ok] = scaled[ok].astype("int64")
    return out


def _parse_one(text: str) -> int:
    """Nanoseconds since the epoch for one ISO-8601 string, or the NaT sentinel."""
    if not _ISO.match(text):
        return _NAT  # "09/10/2025" could be day first or month first: refuse to guess
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return _NAT
    if stamp is pd.NaT:
        return _NAT
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)
