"""The process list of the production topology, as the end-to-end test starts it.

One entry per docker-compose.yml service that runs our code or MLflow: its command exactly as
compose writes it, and the names of the environment variables it gets. The end-to-end test
starts these commands (with local hosts, ports and paths swapped in); test_compose_consistency
fails when docker-compose.yml or the Helm values drift from this list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"

PASSWORD = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}"

# The Dagster instance connection (deploy/dagster.yaml reads these).
INSTANCE_ENV = (
    "DAGSTER_HOME",
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_PORT",
    "DAGSTER_PG_USER",
    "DAGSTER_PG_PASSWORD",
    "DAGSTER_PG_DB",
)
# The configuration contract (shared/DESIGN.md) and the variables added since.
CONTRACT_ENV = (
    "CRYPTO_ASSETS_HOME",
    "CRYPTO_ASSETS_WAREHOUSE_URL",
    "CRYPTO_ASSETS_SOURCE",
    "CRYPTO_ASSETS_SYMBOLS",
    "CRYPTO_ASSETS_TIMEFRAME",
    "CRYPTO_ASSETS_START",
    "CRYPTO_ASSETS_RETRAIN_LABEL_GROWTH",
    "SLACK_WEBHOOK_URL",
    "CRYPTO_ASSETS_ALERT_WEBHOOK",
    "MLFLOW_TRACKING_URI",
    "DBT_SEND_ANONYMOUS_USAGE_STATS",
)
DAGSTER_ENV = INSTANCE_ENV + CONTRACT_ENV


@dataclass(frozen=True)
class Service:
    name: str
    command: tuple[str, ...]  # as docker-compose.yml writes it
    environment: tuple[str, ...]  # variable names the service gets

    def local_command(self, bin_dir: Path, values: Mapping[str, str]) -> list[str]:
        """The command run here: this venv's executable, `values[option]` after each option."""
        local = [str(bin_dir / self.command[0])]
        for previous, part in zip(self.command, self.command[1:], strict=False):
            local.append(values.get(previous, part))
        return local


CODE = Service(
    "code",
    (
        "dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000",
        "-m", "crypto_assets.definitions", "--location-name", "crypto_assets",
    ),
    DAGSTER_ENV,
)  # fmt: skip
WEBSERVER = Service(
    "webserver",
    ("dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "deploy/workspace.yaml"),
    DAGSTER_ENV,
)
DAEMON = Service("daemon", ("dagster-daemon", "run", "-w", "deploy/workspace.yaml"), DAGSTER_ENV)
MLFLOW = Service(
    "mlflow",
    (
        "mlflow", "server", "--host", "0.0.0.0", "--port", "5000",
        "--backend-store-uri", f"postgresql+psycopg2://postgres:{PASSWORD}@postgres:5432/mlflow",
        "--artifacts-destination", "/mlflow/artifacts", "--serve-artifacts",
    ),
    ("MLFLOW_SERVER_ALLOWED_HOSTS",),
)  # fmt: skip

# In start order: MLflow first (the code location's models talk to it), then like compose.
SERVICES = (MLFLOW, CODE, WEBSERVER, DAEMON)
BY_NAME = {service.name: service for service in SERVICES}
