"""The configuration contract: every environment variable the project reads, in one place.

The names are public (DESIGN.md); scripts and users depend on them. Resources are built from
these settings in `crypto_assets.resources`, which keeps a variable that is set as a Dagster
`EnvVar`; no other module reads these variables. Other modules only pass on variables of the
tools they drive (DAGSTER_HOME, dbt's profile variables, telemetry opt-outs).

Two more are secrets and deliberately not Settings fields: SLACK_WEBHOOK_URL (a Slack incoming
webhook) and CRYPTO_ASSETS_ALERT_WEBHOOK (any HTTP endpoint taking alerts as JSON). Only
`crypto_assets.resources` reads them, and only as `EnvVar`s for the alerting resource, so their
values never reach a settings object, the UI or run metadata; unset, alerts are logged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from crypto_assets.errors import UserError
from crypto_assets.market import Timeframe, parse_symbols

DEFAULT_SYMBOLS = "BTC-USD,ETH-USD,SOL-USD,ADA-USD,DOT-USD,DOGE-USD"
DEFAULT_HISTORY_DAYS = 180


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse_url: str
    source: str
    symbols: tuple[str, ...]
    timeframe: Timeframe
    start: date
    mlflow_tracking_uri: str
    #: a model retrains early when its strategy's closed labels grew by this fraction
    retrain_label_growth: float = 0.25


def home_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("CRYPTO_ASSETS_HOME") or "./.crypto_assets").expanduser().absolute()


def default_warehouse_url(home: Path) -> str:
    return f"duckdb:///{home / 'warehouse.duckdb'}"


def parse_start(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"CRYPTO_ASSETS_START={text!r} is not a date: use YYYY-MM-DD") from None


def load_settings(env: dict[str, str] | None = None, today: date | None = None) -> Settings:
    """Read the environment (or `env`) into validated settings."""
    env = os.environ if env is None else env
    home = home_dir(env)
    today = today or date.today()
    start_text = env.get("CRYPTO_ASSETS_START")
    start = parse_start(start_text) if start_text else today - timedelta(days=DEFAULT_HISTORY_DAYS)
    return Settings(
        home=home,
        warehouse_url=env.get("CRYPTO_ASSETS_WAREHOUSE_URL") or default_warehouse_url(home),
        source=env.get("CRYPTO_ASSETS_SOURCE") or "synthetic",
        symbols=tuple(parse_symbols(env.get("CRYPTO_ASSETS_SYMBOLS") or DEFAULT_SYMBOLS)),
        timeframe=Timeframe.parse(env.get("CRYPTO_ASSETS_TIMEFRAME") or "15m"),
        start=start,
        mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}",
        retrain_label_growth=parse_fraction(
            "CRYPTO_ASSETS_RETRAIN_LABEL_GROWTH", env.get("CRYPTO_ASSETS_RETRAIN_LABEL_GROWTH") or "0.25"
        ),
    )


def parse_fraction(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 10:
        raise UserError(f"{name}={text!r} is not a fraction: use e.g. 0.25 for 25 %")
    return value
