"""Dagster resources, built from the configuration contract in one place.

Each field reads its environment variable through `dagster.EnvVar` when the variable is set
(so the UI shows where a value comes from) and falls back to the documented default.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from dagster import ConfigurableResource, EnvVar

from crypto_assets.automation.alerts import AlertsResource
from crypto_assets.ingestion.sources import CandleSource, make_source
from crypto_assets.market import Timeframe, parse_symbols
from crypto_assets.models.tracking import MlflowResource
from crypto_assets.settings import DEFAULT_SYMBOLS, Settings, load_settings
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.schema import ensure_ingestion_tables


class WarehouseResource(ConfigurableResource):
    """The SQL warehouse: DuckDB file (embedded default) or PostgreSQL."""

    url: str

    def open(self) -> Warehouse:
        """A Warehouse with the ingestion tables in place."""
        warehouse = Warehouse(self.url)
        with warehouse.begin() as connection:
            ensure_ingestion_tables(connection)
        return warehouse


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
    """Which symbols and base timeframe this deployment tracks."""

    symbols: str = DEFAULT_SYMBOLS
    timeframe: str = "15m"

    @property
    def symbol_list(self) -> list[str]:
        return parse_symbols(self.symbols)

    @property
    def base_timeframe(self) -> Timeframe:
        return Timeframe.parse(self.timeframe)

    def now(self) -> datetime:
        return datetime.now(UTC)


def build_resources(
    settings: Settings | None = None, *, as_env_vars: bool = True
) -> dict[str, ConfigurableResource]:
    """Resources for `settings`. With `as_env_vars`, values that came from the environment stay
    `EnvVar`s (resolved by Dagster at run time); the CLI, which calls resources directly, asks
    for plain values."""
    settings = settings or load_settings()

    def _env_or(name: str, value: str | None) -> str | EnvVar | None:
        return EnvVar(name) if as_env_vars and os.environ.get(name) else value

    return {
        "warehouse": WarehouseResource(url=_env_or("CRYPTO_ASSETS_WAREHOUSE_URL", settings.warehouse_url)),
        "source": CandleSourceResource(spec=_env_or("CRYPTO_ASSETS_SOURCE", settings.source)),
        "market": MarketResource(
            symbols=_env_or("CRYPTO_ASSETS_SYMBOLS", ",".join(settings.symbols)),
            timeframe=_env_or("CRYPTO_ASSETS_TIMEFRAME", settings.timeframe.name),
        ),
        "mlflow": MlflowResource(
            tracking_uri=_env_or("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri),
            artifact_root=str(settings.home / "mlflow-artifacts"),
        ),
        # secrets: only ever EnvVars here, so neither the UI nor run metadata shows a URL
        "alerting": AlertsResource(
            slack_webhook_url=_env_or("SLACK_WEBHOOK_URL", None),
            webhook_url=_env_or("CRYPTO_ASSETS_ALERT_WEBHOOK", None),
        ),
    }
