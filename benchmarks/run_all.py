"""Run every benchmark and print one table; write it as JSON.

    python benchmarks/run_all.py [--quick] [--only NAME,...] [--out benchmarks/results/latest.json]

Each benchmark script runs as its own process (its full output is kept next to the JSON, as
`<name>.log`). The table has one row per script with its exit status, wall time and the peak RSS of
its largest child process, then the rows the script reports: lines `@row {json}`
(benchmarks.common.report_row: measure, measured, target, verdict), or, for a script that reports
none, each verdict line it prints ("... met" / "... MISSED"). Benchmarks that are not written yet
appear as rows with status "not implemented", so a gap is visible.

The same table is written as Markdown beside the JSON (`latest.md` for `latest.json`), with the
date, machine and load average above it, ready for the README.

Targets are printed, not asserted. The machine is shared and noisy: compare ratios, read the date.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

if not __package__:  # run as `python benchmarks/run_all.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROW_PREFIX, machine_facts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "latest.json"

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"  # a role that may CREATE DATABASE
PG = ["--postgres-url", POSTGRES_URL]

# name -> (script, full-scale arguments, --quick arguments)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "whole graph (DuckDB)": ("models.py", [], ["--symbols", "6", "--days", "30"]),
    "whole graph (PostgreSQL)": (
        "models.py",
        [*PG, "--graph-only"],
        ["--symbols", "6", "--days", "30", *PG, "--graph-only"],
    ),
    "ingest": ("ingest.py", [], ["--symbols", "3", "--days", "3", "--repeat", "1"]),
    "windows": ("windows.py", [], ["--symbols", "3", "--days", "3"]),
    "features": ("features.py", [], ["--symbols", "3", "--days", "3", "--repeat", "1"]),
    "labels": ("labels.py", [], ["--symbols", "3", "--days", "30", "--repeat", "1"]),
    "checks": ("checks.py", [], ["--symbols", "3", "--days", "3", "--repeat", "1"]),
    "load time": ("load_time.py", [], ["--repeat", "1"]),
    "freshness lag under the schedule": (
        "freshness.py",
        [],
        ["--symbols", "3", "--hours", "0.5", "--start", "2025-03-04T23:40"],
    ),
}
#: benchmarks of issue 12's list that are not written yet (name -> target)
MISSING: dict[str, str] = {}
VERDICT = re.compile(r"\b(met|missed)\b", re.IGNORECASE)
ROW_KEYS = ("measure", "measured", "target", "verdict")
#: the table's columns, in the printed and the Markdown table
COLUMNS = ("benchmark", "measure", "measured", "target", "verdict")


def run_one(name: str, script: str, args: list[str], folder: Path, timeout: float) -> list[dict]:
    log = folder / f"{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}.log"
    command = [sys.executable, str(ROOT / "benchmarks" / script), *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        output, status = (
            result.stdout + result.stderr,
            ("ok" if result.returncode == 0 else f"exit {result.returncode}"),
        )
    except subprocess.TimeoutExpired as error:
        output, status = f"{error.stdout or ''}{error.stderr or ''}", f"timeout {timeout:.0f} s"
        output = output if isinstance(output, str) else output.decode(errors="replace")
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    log.write_text(output)
    reported = _reported_rows(name, output)
    rows = [
        {
            "benchmark": name,
            "measure": f"{script} {' '.join(args)}".strip(),
            "target": "",
            "measured": f"{status}, wall {wall:.1f} s"
            + (f", peak child RSS {peak_kb / 1024:,.0f} MB" if peak_kb > before else ""),
            "verdict": "" if status == "ok" else "failed",
        }
    ]
    if reported:
        return rows + reported
    for line in output.splitlines():
        found = VERDICT.search(line)
        if found and (
            "target" in line or line.lstrip().startswith("|") or line.rstrip(" )").endswith(found.group(0))
        ):
            rows.append(
                {
                    "benchmark": name,
                    "measure": "",
                    "target": "see measured",
                    "measured": line.strip()[:160],
                    "verdict": found.group(1).lower(),
                }
            )
    return rows


def _load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _reported_rows(name: str, output: str) -> list[dict]:
    """The rows a script printed with benchmarks.common.report_row."""
    rows = []
    for line in output.splitlines():
        if line.startswith(ROW_PREFIX):
            try:
                row = json.loads(line[len(ROW_PREFIX) :])
            except json.JSONDecodeError:
                continue
            rows.append({"benchmark": name, **{k: str(row.get(k, "")) for k in ROW_KEYS}})
    return rows


def as_markdown(report: dict) -> str:
    """The report as a Markdown table, headed by when, where and under what load it ran."""
    machine = report["machine"]
    scale = "toy scale (--quick)" if report["quick"] else "full scale"
    lines = [
        f"Measured {report['date'][:16].replace('T', ' ')} UTC, {scale}; {machine['cpu']}; "
        f"{machine['python']}; load average before {report['load_average']['before']}, "
        f"after {report['load_average']['after']}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in report["rows"]:
        cells = [str(row[key]).replace("|", "\\|") for key in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny scale (3 symbols x 3 days), for a smoke run"
    )
    parser.add_argument("--only", help="comma-separated benchmark names to run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON path (default {DEFAULT_OUT})")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
    args = parser.parse_args(argv)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only.split(",")) if args.only else set(BENCHMARKS)
    rows: list[dict] = []
    load_before = _load_average()
    for name, (script, full, quick) in BENCHMARKS.items():
        if name in wanted:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows += run_one(name, script, quick if args.quick else full, args.out.parent, args.timeout)
    for name, target in MISSING.items():
        rows.append(
            {"benchmark": name, "measure": "", "target": target, "measured": "not implemented", "verdict": ""}
        )
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "machine": dict(machine_facts()),
        "load_average": {"before": load_before, "after": _load_average()},
        "rows": rows,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    markdown = args.out.with_suffix(".md")
    markdown.write_text(as_markdown(report))
    widths = [max([len(h), *(len(str(r[h])) for r in rows)]) for h in COLUMNS]
    print(" | ".join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True)))
    for row in rows:
        print(" | ".join(str(row[h]).ljust(w) for h, w in zip(COLUMNS, widths, strict=True)))
    print(f"load average (1, 5, 15 min) before {load_before}, after {report['load_average']['after']}")
    print(f"JSON: {args.out}, Markdown: {markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
