"""Candles from a folder of files: `.csv`, `.csv.gz` or `.parquet`, one or many symbols each.

Columns (any case): timestamp, open, high, low, close, volume, and `symbol` unless the file
is named for its symbol (`BTC-USD.csv`). A leading unnamed index column holding the
timestamp is accepted. Rows keep their file and line in `source_ref` for the quarantine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from crypto_assets.errors import UserError
from crypto_assets.ingestion.sources.base import (
    PRICE_COLUMNS,
    CandleSource,
    SourceBatch,
    empty_frame,
    make_frame,
)
from crypto_assets.ingestion.timestamps import to_utc
from crypto_assets.market import Timeframe, parse_symbol

SUFFIXES = (".csv", ".csv.gz", ".parquet")
_TIMESTAMP_ALIASES = ("timestamp", "time", "datetime", "date", "ts", "open_time")


def _symbol_from_name(path: Path) -> str | None:
    stem = path.name
    for suffix in SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    try:
        return parse_symbol(stem)
    except UserError:
        return None


def _is_unnamed(column: str) -> bool:
    return column == "" or column.lower().startswith("unnamed")


class CsvFolderSource(CandleSource):
    exchange = "csv"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            raise UserError(
                f"CSV source folder {self.folder} does not exist: fix CRYPTO_ASSETS_SOURCE=csv:<folder>"
            )
        return sorted(p for p in self.folder.iterdir() if p.name.lower().endswith(SUFFIXES))

    def preflight(self) -> None:
        """Check the folder and every file's columns without reading the rows."""
        for path in self.files():
            if path.name.lower().endswith(".parquet"):
                continue  # parquet schemas are checked when read
            try:
                header = pd.read_csv(path, nrows=0)
            except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
                raise UserError(
                    f"{path}: cannot be read as a table ({error}): fix or remove the file"
                ) from None
            header.columns = [str(c).strip() for c in header.columns]
            header = self._name_columns(header, path)
            if "symbol" not in header.columns:
                _file_symbol(path)

    def fetch(
        self, symbols: Sequence[str], timeframe: Timeframe, start: datetime, end: datetime
    ) -> SourceBatch:
        """Rows of every file in [start, end), plus rows whose timestamp cannot be read.

        Rows of symbols outside `symbols` are returned too: the caller decides whether they
        are unknown (quarantined) or merely not asked for in this run.
        """
        start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
        frames = []
        for path in self.files():
            frame = self.read_file(path)
            in_window = (frame["ts"] >= start_ts) & (frame["ts"] < end_ts)
            frames.append(frame[in_window | frame["ts"].isna()])
        frames = [f for f in frames if len(f)]
        return SourceBatch(frame=pd.concat(frames, ignore_index=True) if frames else empty_frame())

    def read_file(self, path: Path) -> pd.DataFrame:
        """One file in the source frame contract; a malformed file raises a one-line UserError."""
        try:
            if path.name.lower().endswith(".parquet"):
                raw = pd.read_parquet(path)
                raw = raw.reset_index() if not isinstance(raw.index, pd.RangeIndex) else raw
                line_offset, line_word = 0, "row"
            else:
                raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
                line_offset, line_word = 2, "line"  # line 1 is the header
        except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"{path}: cannot be read as a table ({first}): fix or remove the file") from None
        raw.columns = [str(c).strip() for c in raw.columns]
        raw = self._name_columns(raw, path)
        if "symbol" in raw.columns:
            symbols = raw["symbol"].astype(str).map(_normalize_symbol)
        else:
            symbols = _file_symbol(path)
        refs = pd.Series([f"{path.name}:{line_word} {i + line_offset}" for i in range(len(raw))])
        return make_frame(
            symbols if isinstance(symbols, str) else symbols.reset_index(drop=True),
            to_utc(raw["timestamp"]),
            raw["timestamp"].astype(str),
            raw[PRICE_COLUMNS].reset_index(drop=True),
            refs,
        )

    def _name_columns(self, raw: pd.DataFrame, path: Path) -> pd.DataFrame:
        lowered = {c: c.lower() for c in raw.columns}
        raw = raw.rename(columns=lowered)
        if "timestamp" not in raw.columns:
            alias = next((a for a in _TIMESTAMP_ALIASES if a in raw.columns), None)
            if alias is None and len(raw.columns) and _is_unnamed(raw.columns[0]):
                alias = raw.columns[0]
            if alias is not None:
                raw = raw.rename(columns={alias: "timestamp"})
        missing = [c for c in ["timestamp", *PRICE_COLUMNS] if c not in raw.columns]
        if missing:
            raise UserError(
                f"{path}: missing column(s) {', '.join(missing)}: the header needs "
                "timestamp, open, high, low, close, volume (and symbol unless the file is named for it)"
            )
        return raw


def _file_symbol(path: Path) -> str:
    symbol = _symbol_from_name(path)
    if symbol is None:
        raise UserError(
            f"{path}: no symbol column and the file name is not a BASE-QUOTE symbol: "
            "add a symbol column or rename the file, e.g. BTC-USD.csv"
        )
    return symbol


def _normalize_symbol(text: str) -> str:
    try:
        return parse_symbol(text)
    except UserError:
        return text  # validation quarantines it as an unknown symbol
