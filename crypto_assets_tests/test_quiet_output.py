"""What a user sees from `crypto-assets demo` in a terminal: the summary and the CLI's own
progress bar, no noise (no library progress bars, no warnings, no leak report at exit); and
nothing left open at exit (crypto_assets_tests.leak_guard watches the run)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from crypto_assets_tests import leak_guard
from crypto_assets_tests.helpers import SCRIPT

#: a tqdm bar, e.g. Great Expectations' `Calculating Metrics: 100%|█████| 21/21 [...]`
PROGRESS_BAR = re.compile(r"\d+%\|")
#: run a script, or `-c` code, under the guard that reports what is still open at its exit
GUARDED = [sys.executable, leak_guard.__file__]


def run_in_a_terminal(*args: str, timeout: float = 600) -> tuple[int, str]:
    """The console script with its stdout and stderr on a pseudo-terminal, as a user runs it
    (progress bars only show on a terminal), under the leak guard; its exit code and everything
    it printed."""
    main, terminal = pty.openpty()
    # a terminal's size, 120 x 40: tqdm fits its bar to the width (none at width 0)
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen([*GUARDED, SCRIPT, *args], stdout=terminal, stderr=terminal, env=os.environ)
    os.close(terminal)
    chunks = []
    while True:
        ready, _, _ = select.select([main], [], [], timeout)
        if not ready:
            process.kill()
            raise AssertionError("no output for too long:\n" + b"".join(chunks).decode(errors="replace"))
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace").replace("\r", "\n")


@pytest.mark.slow
def test_demo_prints_its_own_progress_bar_and_no_library_noise(home: Path):
    code, output = run_in_a_terminal("demo", "--days", "2")
    # DuckDB objects alive at exit, an engine or connection not disposed: the guard's report (and
    # exit code), or the "leaked instance" report of DuckDB bindings that print one
    leaks = [line for line in output.splitlines() if "leaked" in line]
    assert not leaks, leaks
    assert leak_guard.CLEAN in output, output  # the guard did look
    assert code == 0, output
    assert "raw_ohlc.expectation_suite passed" in output  # the suite did run
    ours = [
        line for line in output.splitlines() if line.startswith("raw_ohlc:") and PROGRESS_BAR.search(line)
    ]
    assert ours and "100%|" in ours[-1], output  # the CLI's bar over the days it loads
    assert "Calculating Metrics" not in output
    noisy = [line for line in output.splitlines() if PROGRESS_BAR.search(line) and line not in ours]
    assert not noisy, noisy
    assert "Warning" not in output, [line for line in output.splitlines() if "Warning" in line]


LEFT_OPEN = {
    "a Warehouse not disposed": (
        "from crypto_assets.warehouse import Warehouse\n"
        "warehouse = Warehouse(f'duckdb:///{sys.argv[1]}')\n"
        "warehouse.query('SELECT 1')",
        "Warehouse duckdb:///",
    ),
    "a DuckDB connection not closed": (
        "import duckdb\nconnection = duckdb.connect(sys.argv[1])",
        "a DuckDBPyConnection",
    ),
    "nothing: a Warehouse used as a context manager": (
        "from crypto_assets.warehouse import Warehouse\n"
        "with Warehouse(f'duckdb:///{sys.argv[1]}') as warehouse:\n"
        "    warehouse.query('SELECT 1')",
        None,
    ),
}


@pytest.mark.parametrize("case", LEFT_OPEN)
def test_the_leak_guard_reports_what_a_process_leaves_open(case: str, tmp_path: Path):
    """The guard the demo runs under can fail: a snippet that leaves a warehouse open is caught."""
    snippet, reported = LEFT_OPEN[case]
    result = subprocess.run(
        [*GUARDED, "-c", f"import sys\n{snippet}", str(tmp_path / "warehouse.duckdb")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    leaks = [line for line in result.stderr.splitlines() if line.startswith(leak_guard.MARK)]
    if reported is None:
        assert (result.returncode, leaks) == (0, []), result.stderr
        assert leak_guard.CLEAN in result.stderr
    else:
        assert result.returncode == leak_guard.LEAKED, result.stderr
        assert len(leaks) == 1 and reported in leaks[0] and "leaked" in leaks[0], result.stderr
