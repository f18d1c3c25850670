"""The code location loads fast and its graph is what the design says."""

import subprocess
import sys

from dagster import AssetKey, instance_for_test


def test_loading_the_code_location_does_not_import_heavy_libraries():
    probe = (
        "import sys, crypto_assets.definitions as d; d.defs.get_repository_def();"
        "heavy = [m for m in ('mlflow', 'great_expectations', 'sklearn', 'dbt.cli', 'ccxt', 'talib')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


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
