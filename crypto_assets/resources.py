"""Dagster resources, built from the configuration contract in one place.

Each domain's Definitions take the resources it owns from here (ingestion: `source`; models:
`mlflow`; alerts: `alerting`); the code location adds the shared ones (`warehouse`, `market`).
A value that came from the environment is set as `dagster.EnvVar`, so the UI and the run records
show the variable's name, never its value (a warehouse URL may hold a password); a value the
settings chose otherwise (the demo's embedded warehouse) is set as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from dagster import ConfigurableResource, EnvVar

from crypto_assets.automation.alerts import AlertsResource
from crypto_assets.ingestion.sources import CandleSource, make_source
from crypto_assets.market import parse_symbols
from crypto_assets.models.tracking import MlflowResource
from crypto_assets.settings import DEFAULT_SYMBOLS, Settings
from crypto_assets.warehouse import Warehouse


class WarehouseResource(ConfigurableResource):
    """The SQL warehouse: DuckDB file (embedded default) or PostgreSQL."""

    url: str

    @contextmanager
    def open(self) -> Iterator[Warehouse]:
        """The warehouse for the length of the block; its engine is disposed when the block ends.

        Tables are created by the domain that owns them (raw_ohlc by its load, features by the
        features refresh, ...), not here.
        """
        with Warehouse(self.url) as warehouse:
            yield warehouse


class CandleSourceResource(ConfigurableResource):
    """Where candles come from: `synthetic`, `csv:<folder>` or `ccxt:<exchange id>`."""

    spec: str = "synthetic"
    ccxt_api_url: str | None = None  # point a ccxt exchange at another host (tests, proxies)
    ccxt_max_retries: int = 5  # per request, on network errors and rate limits
    ccxt_backoff_seconds: float = 1.0  # first retry delay; doubles each time, plus jitter

    def open(self) -> CandleSource:
        return make_source(
            self.spec,
            ccxt_api_url=self.ccxt_api_url,
            ccxt_max_retries=self.ccxt_max_retries,
            ccxt_backoff_seconds=self.ccxt_backoff_seconds,
        )


class MarketResource(ConfigurableResource):
    """Which symbols this deployment tracks, and the clock. Both can change without reloading
    code; the base timeframe cannot (it shapes partitions, the schedule and the dbt manifest) and
    is given to each asset when the definitions are built."""

    symbols: str = DEFAULT_SYMBOLS

    @property
    def symbol_list(self) -> list[str]:
        return parse_symbols(self.symbols)

    def now(self) -> datetime:
        return datetime.now(UTC)


def _from_env(name: str, value: str) -> str | EnvVar:
    """`EnvVar(name)` when `value` is what the environment holds, else `value` itself."""
    return EnvVar(name) if os.environ.get(name) == value else value


def _secret_from_env(name: str) -> EnvVar | None:
    return EnvVar(name) if os.environ.get(name) else None


def shared_resources(settings: Settings) -> dict[str, ConfigurableResource]:
    """The resources every domain uses: the warehouse and the market."""
    symbols = ",".join(settings.symbols)
    return {
        "warehouse": WarehouseResource(url=_from_env("CRYPTO_ASSETS_WAREHOUSE_URL", settings.warehouse_url)),
        "market": MarketResource(symbols=_from_env("CRYPTO_ASSETS_SYMBOLS", symbols)),
    }


def source_resource(settings: Settings) -> CandleSourceResource:
    return CandleSourceResource(spec=_from_env("CRYPTO_ASSETS_SOURCE", settings.source))


def mlflow_resource(settings: Settings) -> MlflowResource:
    return MlflowResource(
        tracking_uri=_from_env("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri),
        artifact_root=str(settings.home / "mlflow-artifacts"),
    )


def alerting_resource() -> AlertsResource:
    """Secrets: only ever EnvVars, so neither the UI nor run records hold a webhook URL."""
    return AlertsResource(
        slack_webhook_url=_secret_from_env("SLACK_WEBHOOK_URL"),
        webhook_url=_secret_from_env("CRYPTO_ASSETS_ALERT_WEBHOOK"),
    )
