"""crypto_assets: a Dagster code location for crypto OHLC data, features, labels and models."""
