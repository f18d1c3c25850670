"""Shape of `make bench`'s table and JSON (no timings asserted)."""

import json

from benchmarks import run_all

#: the rows issue 12 asks `make bench` for
ISSUE_12_ROWS = {
    "whole graph (DuckDB)",
    "whole graph (PostgreSQL)",
    "ingest",
    "windows",
    "features",
    "labels",
    "load time",
    "freshness lag under the schedule",
}


def test_every_benchmark_of_the_list_is_implemented():
    assert set(run_all.BENCHMARKS) >= ISSUE_12_ROWS
    assert not run_all.MISSING
    for script, _, _ in run_all.BENCHMARKS.values():
        assert (run_all.ROOT / "benchmarks" / script).is_file(), script
    # the PostgreSQL whole graph is the DuckDB one's script on a throw-away database
    script, full, quick = run_all.BENCHMARKS["whole graph (PostgreSQL)"]
    assert script == run_all.BENCHMARKS["whole graph (DuckDB)"][0]
    assert "--postgres-url" in full and "--postgres-url" in quick


def test_runner_writes_rows_with_verdicts(tmp_path, capsys):
    out = tmp_path / "latest.json"
    assert run_all.main(["--only", "none", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {"date", "quick", "cpus", "machine", "load_average", "rows"} <= set(report)
    assert "model name" not in report["machine"]["cpu"] and report["machine"]["cpu"]
    assert report["rows"] == []
    assert "JSON:" in capsys.readouterr().out
    # the same report as a Markdown table for the README, headed by date, machine and load
    markdown = (tmp_path / "latest.md").read_text().splitlines()
    assert (
        markdown[0].startswith(f"Measured {report['date'][:10]}") and report["machine"]["cpu"] in markdown[0]
    )
    assert markdown[2] == "| benchmark | measure | measured | target | verdict |"


def test_reported_rows_are_read_from_the_script_output():
    output = "\n".join(
        [
            "some table | met",  # a verdict line: ignored once the script reports rows
            'run_all @row {"measure": "not at the start of the line"}',
            run_all.ROW_PREFIX + '{"measure": "m", "measured": "3x", "target": ">= 2x", "verdict": "met"}',
            run_all.ROW_PREFIX + "{broken",
        ]
    )
    assert run_all._reported_rows("x", output) == [
        {"benchmark": "x", "measure": "m", "measured": "3x", "target": ">= 2x", "verdict": "met"}
    ]


def test_the_labels_row_states_its_target(tmp_path, capsys):
    """A real script through the runner: its status row, then the row it reports."""
    out = tmp_path / "quick.json"
    assert run_all.main(["--quick", "--only", "labels", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    status, *reported = rows
    assert status["benchmark"] == "labels" and status["measured"].startswith("ok, wall")
    (labeller,) = reported
    assert labeller["target"] == ">= 50x" and labeller["verdict"] in {"met", "missed"}
    assert "plain loop" in labeller["measure"]
    assert (tmp_path / "labels.log").read_text().count(run_all.ROW_PREFIX) == 1
    assert "labels" in capsys.readouterr().out
