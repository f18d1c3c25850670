"""Ingestion domain: candle sources, validation and the raw_ohlc asset."""
