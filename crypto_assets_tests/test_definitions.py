"""The code location loads fast and its graph is what the design says."""

import subprocess
import sys

from dagster import AssetKey


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

    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == AssetKey("raw_ohlc"))
    assert spec.group_name == "ingestion"
    assert spec.partitions_def.timezone == "UTC"
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys if key.asset_key == spec.key}
    assert "symbol_coverage" in checks
