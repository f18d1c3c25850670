"""The code location loads fast and its graph is what the design says."""

import importlib.util
import subprocess
import sys

import pytest
from dagster import AssetKey, instance_for_test

#: what a webserver, daemon or run worker must not pay for just to load the code location
HEAVY = ["pandas", "pyarrow", "psycopg", "ccxt", "talib", "great_expectations", "mlflow", "sklearn"]


@pytest.mark.parametrize("module", HEAVY)
def test_every_heavy_library_is_installed(module: str):
    """Otherwise the probe below would pass for the wrong reason."""
    assert importlib.util.find_spec(module) is not None


def test_loading_the_code_location_imports_no_heavy_library_and_warns_nothing():
    probe = (
        "import sys, crypto_assets.definitions as d; d.defs.get_repository_def();"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    # Python's default warning filters, as in `dagster dev` or a run worker (pytest's are not)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported when the code location loads: {result.stdout.strip()}"
    assert "Warning" not in result.stderr, result.stderr


def test_raw_ohlc_is_daily_partitioned_in_the_ingestion_group_with_its_checks():
    from crypto_assets.definitions import defs

    with instance_for_test():  # resolving definitions consults the current instance
        specs = defs.resolve_all_asset_specs()
        graph = defs.resolve_asset_graph()
    spec = next(s for s in specs if s.key == AssetKey("raw_ohlc"))
    assert spec.group_name == "ingestion"
    assert spec.partitions_def.timezone == "UTC"
    checks = {key.name for key in graph.asset_check_keys if key.asset_key == spec.key}
    assert checks >= {"symbol_coverage", "raw_ohlc_expectations", "raw_ohlc_gaps", "raw_ohlc_outlier_moves"}
    assert spec.freshness_policy is not None
    schedule = defs.resolve_schedule_def("raw_ohlc_after_each_bar")
    assert schedule.cron_schedule == "1,16,31,46 * * * *"
