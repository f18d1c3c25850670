"""What a user sees from `crypto-assets demo`: the summary and the CLI's own progress bar, no noise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crypto_assets_tests.helpers import run

#: a tqdm bar as Great Expectations prints them: `Calculating Metrics: 100%|█████| 21/21 [...]`
PROGRESS_BAR = re.compile(r"\d+%\|")


@pytest.mark.slow
def test_demo_prints_no_progress_bars_of_libraries_no_warnings_and_no_leak_report(home: Path):
    demo = run("demo", "--days", "2")
    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    assert "raw_ohlc.raw_ohlc_expectations passed" in demo.stdout  # the suite did run
    assert "Calculating Metrics" not in output
    noisy = [line for line in output.splitlines() if PROGRESS_BAR.search(line) and "Calculating" in line]
    assert not noisy, noisy
    assert "Warning" not in output, [line for line in output.splitlines() if "Warning" in line]
    leaks = [line for line in output.splitlines() if "leaked" in line]
    assert not leaks, leaks  # DuckDB objects alive at exit: an engine or connection not disposed
