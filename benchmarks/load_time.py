"""Load-time benchmark: what loading the code location costs beyond Dagster itself.

    python benchmarks/load_time.py [--repeat 5]

Every webserver, daemon and run worker imports `crypto_assets.definitions` and builds the
repository. Each measurement is a fresh interpreter (so nothing is cached in `sys.modules`),
alternating between the two sides:

- ours: `import crypto_assets.definitions; defs.get_repository_def()`
- baseline: `import dagster, dagster_dbt` (the least any Dagster code location with dbt pays)

Printed: the median of `--repeat` runs of each and the ratio ours / baseline (target <= 1.3).
Timings are taken inside the child process (interpreter start-up excluded).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

TARGET = 1.3
ROOT = Path(__file__).resolve().parent.parent
_TIMED = "import time; t = time.perf_counter(); {body}; print(time.perf_counter() - t)"
SIDES = {
    "ours": "import crypto_assets.definitions as d; d.defs.get_repository_def()",
    "baseline": "import dagster, dagster_dbt",
}


def measure(body: str) -> float:
    """Seconds one fresh interpreter takes for `body` (its last stdout line)."""
    result = subprocess.run(
        [sys.executable, "-c", _TIMED.format(body=body)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per side (default 5)")
    args = parser.parse_args(argv)
    seconds: dict[str, list[float]] = {side: [] for side in SIDES}
    measure(SIDES["ours"])  # warm the OS file cache and the bytecode once, untimed
    for run in range(args.repeat):
        order = list(SIDES) if run % 2 == 0 else list(reversed(SIDES))
        for side in order:
            seconds[side].append(measure(SIDES[side]))
    ours, base = (statistics.median(seconds[side]) for side in SIDES)
    ratio = ours / base
    print(f"load-time benchmark, median of {args.repeat} fresh processes per side")
    for side, code in SIDES.items():
        runs = ", ".join(f"{s:.2f}" for s in seconds[side])
        print(f"  {side:<8} {statistics.median(seconds[side]):.2f} s  [{runs}]  `{code}`")
    verdict = "met" if ratio <= TARGET else "missed"
    print(f"ratio ours / baseline: {ratio:.2f} (target <= {TARGET}: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
