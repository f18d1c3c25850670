"""Run a Python script (or `-c` code) and report the warehouse connections still alive at its exit.

    python crypto_assets_tests/leak_guard.py .venv/bin/crypto-assets demo --days 2
    python crypto_assets_tests/leak_guard.py -c "from crypto_assets.warehouse import Warehouse; ..."

The script runs as Python would run it: its real folder first on sys.path, its arguments in
sys.argv, its globals alive until exit. An atexit hook, registered before it starts and so run
after every hook it registers, collects garbage and looks for what should be gone: a
`crypto_assets.warehouse.Warehouse` whose engine was never disposed, and any DuckDB connection
object (held at exit means never released). Each is printed to stderr as `leak guard: leaked at
exit: ...` and the process exits with LEAKED; else the guard prints CLEAN, so a test also sees
that the check ran (a process that ends with `os._exit` runs no atexit hook).

DuckDB 2.0.1's bindings print nothing for a connection alive at exit (2.0.0 printed a nanobind
"leaked instance" report), so the tests ask this guard instead.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path

LEAKED = 3
MARK = "leak guard: leaked at exit:"
CLEAN = "leak guard: nothing left open at exit"


def live_leaks() -> list[str]:
    """Undisposed Warehouse engines and live DuckDB connections, after a garbage collection.

    Looks only at classes already imported: a process that never imported them holds none."""
    gc.collect()
    engine = sys.modules.get("crypto_assets.warehouse.engine")
    duckdb = sys.modules.get("duckdb")
    found = []
    for thing in gc.get_objects():
        kind = type(thing)  # not isinstance: that would ask proxies for their __class__
        if engine is not None and issubclass(kind, engine.Warehouse) and "engine" in vars(thing):
            found.append(f"Warehouse {thing.describe()} with its engine not disposed")
        elif duckdb is not None and issubclass(kind, duckdb.DuckDBPyConnection):
            found.append("a DuckDBPyConnection")
    return found


def _report_at_exit() -> None:
    leaks = live_leaks()
    if not leaks:
        print(CLEAN, file=sys.stderr)
        return
    for leak in leaks:
        print(f"{MARK} {leak}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(LEAKED)  # an exception or SystemExit raised in an atexit hook is printed, not obeyed


def main(argv: Sequence[str]) -> None:
    if not argv:
        raise SystemExit(f"usage: {sys.argv[0]} SCRIPT [ARG ...] | -c CODE [ARG ...]")
    atexit.register(_report_at_exit)
    if argv[0] == "-c":
        sys.argv, sys.path[0] = ["-c", *argv[2:]], ""
        _run_as_main(argv[1], "<string>")
    else:
        sys.argv, sys.path[0] = list(argv), str(Path(argv[0]).resolve().parent)
        _run_as_main(Path(argv[0]).read_text(), argv[0])


def _run_as_main(source: str, filename: str) -> None:
    """`source` as the `__main__` module, which (as when Python runs a script) stays in sys.modules
    until the interpreter exits, with whatever its globals hold."""
    module = types.ModuleType("__main__")
    if filename != "<string>":
        module.__file__ = filename
    sys.modules["__main__"] = module
    exec(compile(source, filename, "exec", dont_inherit=True), vars(module))


if __name__ == "__main__":
    main(sys.argv[1:])
