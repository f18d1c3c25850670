"""The code location assembled once: every domain's definitions (each with its assets, checks,
freshness policies, schedules, sensors and the resources it owns), the alerts sensor over all of
them, the resources every domain shares, and the executor of every run.
`crypto_assets.definitions`, the command line and the tests all call `build_defs`."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from crypto_assets.automation.alerts import build_alerts_sensor
from crypto_assets.features.defs import features_and_labels_defs
from crypto_assets.ingestion.defs import ingestion_defs
from crypto_assets.models.assets import models_by_labels
from crypto_assets.models.defs import models_defs
from crypto_assets.resources import alerting_resource, shared_resources
from crypto_assets.settings import Settings
from crypto_assets.transform.defs import transform_defs


def build_defs(settings: Settings) -> Definitions:
    return Definitions.merge(
        ingestion_defs(settings),
        transform_defs(settings),
        features_and_labels_defs(settings),
        models_defs(settings),
        Definitions(
            sensors=[build_alerts_sensor(list(models_by_labels().values()))],
            resources={"alerting": alerting_resource()},
        ),
        # Every step is in the warehouse pool (one slot in dagster.yaml and deploy/dagster.yaml), so
        # a run's steps go one at a time whatever the executor; the default multiprocess executor
        # would start a Python process per step and import the code location again (about 5 s
        # before ~1 s of work, measured under the daemon on 2 cores). They run in the run worker.
        Definitions(resources=shared_resources(settings), executor=in_process_executor),
    )
