"""The README's commands, run as a user runs them: the `crypto-assets` console script."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from crypto_assets_tests.helpers import SCRIPT, TRAINED_WINDOW, assert_one_line_error, run, wait_for_http


@pytest.mark.slow
def test_demo_then_status(home: Path):
    demo = run("demo", "--days", "3")
    assert demo.returncode == 0, demo.stderr
    for symbol in ["BTC-USD", "ETH-USD", "SOL-USD", "ADA-USD", "DOT-USD", "DOGE-USD"]:
        assert symbol in demo.stdout
    for check in ["symbol_coverage", "expectation_suite", "gaps", "outlier_moves"]:
        assert f"raw_ohlc.{check} passed" in demo.stdout
    for model in ["ohlc_1h", "ohlc_4h", "ohlc_1d", "ohlc_today", "ohlc_recent"]:
        assert f"{model}.unique_bar_key passed" in demo.stdout
    assert "ohlc_quarantine rows: 0" in demo.stdout
    for strategy in ["dca", "swing", "channel"]:
        assert any(line.split()[:1] == [strategy] for line in demo.stdout.splitlines()), strategy
    assert "features: rows per timeframe" in demo.stdout
    # three days hold too few labels to train: each model says so, and there is no signal to score
    assert "strategy models (out of sample" in demo.stdout
    for strategy in ["dca", "swing", "channel"]:
        assert f"  {strategy}: not trained:" in demo.stdout
    assert "no strategy has a champion" in demo.stdout
    assert demo.returncode == 0 and "run failed" not in demo.stderr
    assert "crypto-assets mlflow" in demo.stdout and (home / "mlflow.db").exists()
    assert "http://127.0.0.1:3000" in demo.stdout
    assert (home / "warehouse.duckdb").exists()
    runs = list((Path(os.environ["DAGSTER_HOME"]) / "history" / "runs").glob("*.db"))
    assert runs, "the demo's runs are recorded in the Dagster instance"

    # three days: no champion, so no signals; status says so from what the instance recorded
    status = run("status")
    assert status.returncode == 1, status.stdout + status.stderr
    assert status.stdout.count(" ok") == 6  # every symbol covered and recent
    for section in ["assets (age of", "checks: ", "failed runs", "models (champion", "symbols"]:
        assert section in status.stdout
    assert "raw_ohlc:expectation_suite" not in status.stdout  # only checks that did not pass
    problems = status.stderr.removeprefix("unhealthy: ").strip().split("; ")
    assert problems[0] == "strategy_signals never materialized", status.stderr
    assert not any("run " in problem for problem in problems), "no failed run: signals were left out"
    document = json.loads(run("status", "--json").stdout)
    assert document["healthy"] is False and document["problems"][0] == "strategy_signals never materialized"
    states = {a["asset"]: a["state"] for a in document["assets"]}
    assert states["raw_ohlc"] == states["features"] == states["dca_model"] == "fresh"
    assert {m["model"]: m["champion_version"] for m in document["models"]} == dict.fromkeys(
        ["dca_model", "swing_model", "channel_model"]
    )
    assert {c["check"]: c["status"] for c in document["checks"]}["raw_ohlc:expectation_suite"] == "passed"

    stale = run("status", env={"CRYPTO_ASSETS_SYMBOLS": "BTC-USD,XRP-USD"})
    assert stale.returncode == 1
    assert "XRP-USD missing" in stale.stderr


@pytest.mark.slow
def test_mlflow_serves_the_configured_store_without_mlruns_in_the_working_folder(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from mlflow import MlflowClient

    from crypto_assets_tests.processes import free_port, start, stop

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = f"sqlite:///{home / 'mlflow.db'}"  # the default store: MLFLOW_TRACKING_URI unset
    home.mkdir(parents=True)
    MlflowClient(store, registry_uri=store).create_experiment(
        "made-before", artifact_location=(home / "artifacts").as_uri()
    )
    folder = tmp_path / "working-folder"
    folder.mkdir()
    port = free_port()
    ui = start("mlflow-ui", [SCRIPT, "mlflow", "--port", str(port)], dict(os.environ), folder)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/", ui)
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=10"
        with urllib.request.urlopen(url, timeout=10) as response:
            names = {e["name"] for e in json.load(response)["experiments"]}
    finally:
        assert stop([ui]) == [], "stops on SIGTERM"
    assert "made-before" in names, "the UI reads the configured store"
    assert sorted(p.name for p in folder.iterdir()) == ["mlflow-ui.log"], "no ./mlruns or ./mlartifacts"


@pytest.mark.slow
def test_backfill_downstream_trains_the_models_scores_signals_and_the_summary_names_the_champion(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    import pandas as pd

    from crypto_assets.cli.commands import _print_strategy_models
    from crypto_assets.resources import mlflow_resource
    from crypto_assets.settings import load_settings
    from crypto_assets.warehouse import Warehouse

    monkeypatch.setenv("CRYPTO_ASSETS_START", TRAINED_WINDOW[0])
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first, last = TRAINED_WINDOW
    backfill = run("backfill", "--start", first, "--end", last, "--downstream", timeout=900)
    assert backfill.returncode == 0, backfill.stdout[-2000:] + backfill.stderr
    models = {m["model"]: m for m in json.loads(run("status", "--json").stdout)["models"]}
    assert models["swing_model"]["champion_version"] == 1, models
    assert models["swing_model"]["oos_auc"] > 0.55
    for model in ("dca_model", "channel_model"):
        assert models[model]["champion_version"] is None and "no edge" in models[model]["last_training"]

    # ... and all the way to signals: the champion's strategy scored on the newest bar of every symbol
    settings = load_settings()
    with Warehouse(settings.warehouse_url) as warehouse:
        signals = warehouse.query(
            "SELECT strategy, symbol, timeframe, ts, model_version FROM strategy_signals"
        )
        newest = warehouse.query(
            "SELECT symbol, max(ts) AS ts FROM raw_ohlc WHERE timeframe = :base GROUP BY symbol",
            {"base": settings.timeframe.name},
        )
    assert set(signals["strategy"]) == {"swing"}, "only a strategy with a champion is scored"
    assert sorted(signals["symbol"]) == sorted(settings.symbols), "one row per symbol"
    assert set(signals["model_version"]) == {1} and set(signals["timeframe"]) == {settings.timeframe.name}
    scored = dict(zip(signals["symbol"], pd.to_datetime(signals["ts"], utc=True), strict=True))
    assert scored == dict(zip(newest["symbol"], pd.to_datetime(newest["ts"], utc=True), strict=True))

    # what the demo prints per strategy, from this instance and store
    _print_strategy_models(mlflow_resource(load_settings()).process_config_and_initialize())
    summary = capsys.readouterr().out
    lines = summary.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["strategy", "labels"])
    header, *rows = lines[start : start + 4]
    assert header.split() == [
        "strategy", "labels", "base_rate", "oos_auc", "win_rate_taken", "win_rate_all", "version", "champion"
    ]  # fmt: skip
    table = {row.split()[0]: dict(zip(header.split(), row.split(), strict=True)) for row in rows}
    for strategy, champion in (("dca", "none"), ("swing", "v1"), ("channel", "none")):
        row = table[strategy]
        assert int(row["labels"]) >= 1000 and row["version"] == "1" and row["champion"] == champion, row
        assert row["base_rate"].endswith("%") and row["win_rate_taken"].endswith("%")
        assert row["win_rate_all"] == row["base_rate"] and 0.4 < float(row["oos_auc"]) < 1
    assert "  swing: v1 is the first champion: edge out of sample" in summary
    assert "  dca: v1 not promoted: no edge out of sample" in summary


def test_status_on_an_empty_warehouse_says_missing(home: Path):
    result = run("status")
    assert result.returncode == 1
    assert "BTC-USD missing" in result.stderr


def test_backfill_narrowed_to_one_symbol(home: Path):
    from datetime import UTC, datetime, timedelta

    day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    result = run("backfill", "--start", day, "--end", day, "--symbols", "eth-usd")
    assert result.returncode == 0, result.stderr
    assert "1 run(s) recorded" in result.stdout
    status = run("status")
    assert "ETH-USD" in status.stdout and "BTC-USD missing" in status.stderr


@pytest.mark.parametrize(
    ("args", "env", "needles"),
    [
        (["backfill", "--start", "2025-02-30", "--end", "2025-03-01"], {}, ["--start", "YYYY-MM-DD"]),
        (["backfill", "--start", "2000-01-01", "--end", "2000-01-02"], {}, ["CRYPTO_ASSETS_START"]),
        (["status"], {"CRYPTO_ASSETS_SOURCE": "kraken"}, ["CRYPTO_ASSETS_SOURCE", "ccxt:"]),
        (["status"], {"CRYPTO_ASSETS_WAREHOUSE_URL": "postgresql://nobody@127.0.0.1:1/x"}, ["cannot reach"]),
        (["status"], {"CRYPTO_ASSETS_TIMEFRAME": "7x"}, ["CRYPTO_ASSETS_TIMEFRAME"]),
        (["status"], {"CRYPTO_ASSETS_SYMBOLS": "BTC_USD"}, ["BASE-QUOTE"]),
        (["backfill"], {}, ["--start"]),
        (["status", "--max-age", "0"], {}, ["--max-age", "'0' is not a positive whole number of minutes"]),
        (["status", "--max-age", "-5"], {}, ["--max-age", "'-5' is not a positive"]),
        (["status", "--max-age", "1.5"], {}, ["--max-age", "'1.5' is not a positive"]),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(home: Path, args, env, needles):
    assert_one_line_error(run(*args, env=env), *needles)


def test_malformed_csv_is_one_line_naming_the_file(home: Path, tmp_path: Path):
    from datetime import UTC, datetime, timedelta

    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "BTC-USD.csv").write_text("when,price\n2025-01-01,3\n")
    day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
    result = run("backfill", "--start", day, "--end", day, env={"CRYPTO_ASSETS_SOURCE": f"csv:{folder}"})
    assert_one_line_error(result, "BTC-USD.csv", "missing column(s)")
