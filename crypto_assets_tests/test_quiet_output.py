"""What a user sees from `crypto-assets demo` in a terminal: the summary and the CLI's own
progress bar, no noise (no library progress bars, no warnings, no leak report at exit)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
from pathlib import Path

import pytest

from crypto_assets_tests.helpers import SCRIPT

#: a tqdm bar, e.g. Great Expectations' `Calculating Metrics: 100%|█████| 21/21 [...]`
PROGRESS_BAR = re.compile(r"\d+%\|")


def run_in_a_terminal(*args: str, timeout: float = 600) -> tuple[int, str]:
    """The console script with its stdout and stderr on a pseudo-terminal, as a user runs it
    (progress bars only show on a terminal); its exit code and everything it printed."""
    main, terminal = pty.openpty()
    # a terminal's size, 120 x 40: tqdm fits its bar to the width (none at width 0)
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen([SCRIPT, *args], stdout=terminal, stderr=terminal, env=os.environ)
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
    leaks = [line for line in output.splitlines() if "leaked" in line]
    assert not leaks, leaks  # DuckDB objects alive at exit: an engine or connection not disposed
