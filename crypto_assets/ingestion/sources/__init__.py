"""Candle sources and the one function that picks one from `CRYPTO_ASSETS_SOURCE`."""

from __future__ import annotations

from crypto_assets.errors import UserError
from crypto_assets.ingestion.sources.base import CandleSource, SourceBatch

__all__ = ["CandleSource", "SourceBatch", "make_source"]


def make_source(
    spec: str,
    *,
    ccxt_api_url: str | None = None,
    ccxt_max_retries: int = 5,
    ccxt_backoff_seconds: float = 1.0,
) -> CandleSource:
    """`synthetic[:seed]`, `csv:<folder>` or `ccxt:<exchange id>` -> a source."""
    kind, _, argument = spec.strip().partition(":")
    if kind == "synthetic":
        from crypto_assets.ingestion.sources.synthetic import SyntheticSource

        if argument and not argument.isdigit():
            raise UserError(f"CRYPTO_ASSETS_SOURCE={spec!r}: the synthetic seed must be a number")
        return SyntheticSource(seed=int(argument or 7))
    if kind == "csv" and argument:
        from crypto_assets.ingestion.sources.csv_files import CsvFolderSource

        return CsvFolderSource(argument)
    if kind == "ccxt" and argument:
        from crypto_assets.ingestion.sources.ccxt_exchange import CcxtSource

        return CcxtSource(
            argument,
            api_url=ccxt_api_url,
            max_retries=ccxt_max_retries,
            backoff_seconds=ccxt_backoff_seconds,
        )
    raise UserError(
        f"CRYPTO_ASSETS_SOURCE={spec!r} is not a known source: use synthetic, "
        "csv:<folder> or ccxt:<exchange id> (e.g. ccxt:binance)"
    )
