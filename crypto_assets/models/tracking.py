"""MLflow tracking and registry for the strategy models, through one small Dagster resource.

Each strategy has an experiment `crypto_assets.<strategy>` and a registered model of the same name;
aliases `champion` and `challenger` name the versions the gate chose. With a local store (SQLite or
a database URL) artifacts go under CRYPTO_ASSETS_HOME, never `./mlruns` of the working folder; with
an MLflow server (http) the server stores them (`--serve-artifacts`), so no volume is shared.
Nothing secret is logged: parameters and tags come from the strategy and model configs only, the
tracking URI is shown without its password, and a server's credentials are handed to MLflow through
its MLFLOW_TRACKING_USERNAME / _PASSWORD variables, never inside the URL (MLflow writes the request
URL into its error messages, so a password in it would land in the run's failure log). Those
variables, and every other MLFLOW_* one MLflow sets, exist only while the resource calls MLflow
(`MlflowResource.environment`): a process started outside those calls (dbt) inherits none of them.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit, urlunsplit

from dagster import ConfigurableResource

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

CHAMPION = "champion"
CHALLENGER = "challenger"
#: MLflow's environment variables (its telemetry session is `_MLFLOW_TELEMETRY_SESSION_ID`)
_MLFLOW_PREFIXES = ("MLFLOW_", "_MLFLOW_")
#: held by `MlflowResource.environment`: os.environ is one per process, so one thread at a time
_ENVIRONMENT_LOCK = threading.RLock()
#: skops refuses to load types it was not told to trust; these are the ones our pipelines hold
SKOPS_TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


def registered_name(strategy: str) -> str:
    return f"crypto_assets.{strategy}"


class MlflowResource(ConfigurableResource):
    """The MLflow tracking store and model registry (MLFLOW_TRACKING_URI)."""

    tracking_uri: str
    artifact_root: str  # artifacts of a local store: a folder under CRYPTO_ASSETS_HOME

    @property
    def uses_server(self) -> bool:
        """An MLflow server stores (proxies) artifacts itself."""
        return urlsplit(self.tracking_uri).scheme in ("http", "https")

    def describe(self) -> str:
        """The tracking URI without a password."""
        parts = urlsplit(self.tracking_uri)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return urlunsplit(parts._replace(netloc=netloc))
        return self.tracking_uri

    @contextmanager
    def environment(self) -> Iterator[str]:
        """MLflow pointed at this store for the length of the block (yields the URI to give it),
        and the process environment left as it was found.

        MLflow 3 takes a server's credentials only from the environment (or a credentials file):
        `mlflow.utils.credentials.get_default_host_creds` reads MLFLOW_TRACKING_USERNAME and
        _PASSWORD at every request of its REST stores and artifact repositories. And MLflow writes
        variables itself: set_tracking_uri and set_registry_uri put MLFLOW_TRACKING_URI and
        MLFLOW_REGISTRY_URI there "so that subprocess can inherit it", set_experiment
        MLFLOW_EXPERIMENT_ID. So the block sets what MLflow needs, and on leaving removes every
        (_)MLFLOW_* variable that was not there before and restores those that were. Blocks nest;
        threads take turns.
        """
        uri, credentials = self._uri_and_credentials()
        with _ENVIRONMENT_LOCK:
            saved = {name: value for name, value in os.environ.items() if name.startswith(_MLFLOW_PREFIXES)}
            try:
                # MLflow 3 sends usage telemetry unless told not to (read on import and on every call)
                os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
                os.environ.update(credentials)
                import mlflow

                for name in ("mlflow", "alembic"):  # store migrations and registration chatter
                    logging.getLogger(name).setLevel(logging.WARNING)
                mlflow.set_tracking_uri(uri)
                mlflow.set_registry_uri(uri)
                yield uri
            finally:
                for name in [name for name in os.environ if name.startswith(_MLFLOW_PREFIXES)]:
                    if name not in saved:
                        del os.environ[name]
                os.environ.update(saved)

    def client(self) -> MlflowClient:
        """The tracking and registry client; each of its calls runs inside `environment()`."""
        with self.environment() as uri:
            from mlflow import MlflowClient

            client = MlflowClient(uri, registry_uri=uri)
        return cast("MlflowClient", _InEnvironment(client, self))

    def _uri_and_credentials(self) -> tuple[str, dict[str, str]]:
        """The tracking URI without a server's credentials, and those as MLflow's variables.
        A database URL keeps its password: SQLAlchemy needs it there and does not print it."""
        parts = urlsplit(self.tracking_uri)
        if not self.uses_server or parts.username is None:
            return self.tracking_uri, {}
        credentials = {"MLFLOW_TRACKING_USERNAME": unquote(parts.username)}
        if parts.password is not None:
            credentials["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password)
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), credentials

    def experiment_id(self, strategy: str) -> str:
        client = self.client()
        name = registered_name(strategy)
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if not self.uses_server:
            folder = Path(self.artifact_root).expanduser().absolute() / name
            folder.mkdir(parents=True, exist_ok=True)
            location = folder.as_uri()
        return client.create_experiment(name, artifact_location=location)

    def version_by_alias(self, strategy: str, alias: str) -> ModelVersion | None:
        """The version holding `alias`, or None when the model or the alias does not exist yet."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client().get_model_version_by_alias(registered_name(strategy), alias)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise

    def load_version(self, strategy: str, version: int | str) -> Any:
        """The scikit-learn pipeline of one registered version."""
        with self.environment():
            import mlflow.sklearn

            return mlflow.sklearn.load_model(f"models:/{registered_name(strategy)}/{version}")

    def run_link(self, experiment_id: str, run_id: str) -> str:
        """A link to the run in the MLflow UI when there is a server, else how to find it."""
        if self.uses_server:
            parts = urlsplit(self.tracking_uri)
            host = parts.hostname or ""
            origin = f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"
            return f"{origin}/#/experiments/{experiment_id}/runs/{run_id}"
        return f"run {run_id} in {self.describe()} (browse with `crypto-assets mlflow`)"


class _InEnvironment:
    """An MlflowClient whose every method call runs inside its resource's `environment()`."""

    def __init__(self, client: MlflowClient, resource: MlflowResource) -> None:
        self._client = client
        self._resource = resource

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def in_environment(*args: Any, **kwargs: Any) -> Any:
            with self._resource.environment():
                return attribute(*args, **kwargs)

        return in_environment


def log_training(
    tracking: MlflowResource,
    *,
    strategy: str,
    run_name: str,
    tags: dict[str, str],
    params: dict[str, Any],
    metrics: dict[str, float],
    fold_metrics: list[dict[str, float]],
    plots: Path,
    model: Any,
    input_example: Any,
    version_tags: dict[str, str],
) -> tuple[str, str, int]:
    """One MLflow run: params, metrics (overall, and per fold as steps), plots, and the model,
    registered as a new version. Returns (experiment id, run id, version)."""
    import math

    import sklearn

    with tracking.environment():
        import mlflow
        import mlflow.sklearn
        from mlflow.models import infer_signature

        experiment_id = tracking.experiment_id(strategy)
        client = tracking.client()
        finite = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
            mlflow.log_params(params)
            mlflow.log_metrics(finite)
            for step, row in enumerate(fold_metrics):
                mlflow.log_metrics(
                    {f"fold_{k}": float(v) for k, v in row.items() if math.isfinite(float(v))}, step=step
                )
            mlflow.log_artifacts(str(plots), artifact_path="plots")
            signature = infer_signature(input_example, model.predict_proba(input_example)[:, 1])
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=signature,
                input_example=input_example,
                pip_requirements=[f"scikit-learn=={sklearn.__version__}", "skops", "pandas", "numpy"],
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
            )
        # registered through the client: mlflow.register_model prints to stderr
        name = registered_name(strategy)
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            client.create_registered_model(name, description=f"crypto_assets {strategy} entry classifier")
        registered = client.create_model_version(
            name, source=info.model_uri, run_id=run.info.run_id, model_id=info.model_id, tags=version_tags
        )
    return experiment_id, run.info.run_id, int(registered.version)


def set_alias(tracking: MlflowResource, strategy: str, alias: str, version: int) -> None:
    tracking.client().set_registered_model_alias(registered_name(strategy), alias, str(version))
