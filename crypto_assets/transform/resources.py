"""The `dbt` resource: dagster-dbt's CLI resource, built by `DbtSetup.dbt_resource()`."""

from __future__ import annotations

from collections.abc import Sequence

from dagster_dbt import DbtCliResource


class ProjectDbtCli(DbtCliResource):
    """DbtCliResource without the dbt adapter it loads in the run process before each invocation.

    dagster-dbt 0.29 loads the dbt profile and macros in-process (about 1 s here) only to offer
    `fetch_row_counts()` / `fetch_column_metadata()`, which the transform assets do not use: they
    count rows themselves once dbt has exited (on DuckDB the file is dbt's until then). The
    profile's variables reach the dbt process alone (crypto_assets.transform.launcher), so loading
    the profile here would fail and log a warning on every run. The method is dagster-dbt's own
    (private) hook, the one it skips for dbt Fusion; a test fails if that warning ever comes back.
    """

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None
