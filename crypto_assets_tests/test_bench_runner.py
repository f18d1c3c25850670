"""Shape of `make bench`'s table and JSON (no timings asserted)."""

import json

from benchmarks import run_all


def test_runner_writes_rows_with_verdicts(tmp_path, capsys):
    out = tmp_path / "latest.json"
    assert run_all.main(["--only", "none", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {"date", "quick", "cpus", "rows"} <= set(report)
    assert {row["benchmark"] for row in report["rows"]} == set(run_all.MISSING)
    assert all({"benchmark", "target", "measured", "verdict"} <= set(row) for row in report["rows"])
    assert "JSON:" in capsys.readouterr().out
