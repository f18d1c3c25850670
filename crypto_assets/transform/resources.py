"""The dbt resource: dagster-dbt's CLI resource on the project's per-timeframe target."""

from __future__ import annotations

from crypto_assets.market import Timeframe
from crypto_assets.transform.project import dbt_executable, project_dir, target_dir


def dbt_project(base_timeframe: Timeframe):
    """dagster-dbt's DbtProject for this base timeframe (manifest in target/base_<tf>/)."""
    from dagster_dbt import DbtProject

    directory = project_dir()
    return DbtProject(
        project_dir=directory,
        profiles_dir=directory,
        target_path=target_dir(base_timeframe).relative_to(directory),
    )


def build_dbt_resources(base_timeframe: Timeframe) -> dict:
    """{"dbt": DbtCliResource}. The warehouse it writes is not configured here: the asset derives
    dbt's profile variables from the `warehouse` resource at run time (dbt_profile.py)."""
    from dagster_dbt import DbtCliResource

    # the dbt beside this interpreter: the venv's bin/ is often not on PATH (cron, IDEs, services)
    return {"dbt": DbtCliResource(project_dir=dbt_project(base_timeframe), dbt_executable=dbt_executable())}
