"""The code location Dagster loads (`dagster dev -m crypto_assets.definitions`): built from the
environment's settings by crypto_assets.code_location.build_defs."""

import gc

import dagster  # noqa: F401  (imported by everything below; first, so it is frozen with the rest)
import dagster_dbt  # noqa: F401

# Dagster's import leaves millions of long-lived objects (its modules, config schemas, pydantic
# models), and every full collection while the code location is built walks all of them: about
# 0.15 s of each webserver, daemon, code server and run worker start here (benchmarks/load_time.py).
# gc.freeze() moves the objects alive now to the permanent generation, which collections skip;
# they live as long as the process anyway.
gc.freeze()

from crypto_assets.code_location import build_defs  # noqa: E402
from crypto_assets.settings import load_settings  # noqa: E402

defs = build_defs(load_settings())
