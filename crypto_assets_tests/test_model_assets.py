"""The model and signal assets materialized through Dagster against a real warehouse (DuckDB and
PostgreSQL) and a real MLflow store: skips, the registry, and signals that follow the champion."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, evaluate_automation_conditions, materialize

from crypto_assets.features.store import ensure_features_table, replace_features
from crypto_assets.ingestion.checks import build_raw_ohlc_checks
from crypto_assets.labels.store import ensure_label_table, rewrite_labels
from crypto_assets.market import Timeframe
from crypto_assets.models.assets import build_model_assets
from crypto_assets.models.dataset import feature_columns
from crypto_assets.models.signals import SIGNAL_COLUMNS, build_signals_asset
from crypto_assets.models.tracking import CHAMPION, MlflowResource
from crypto_assets.resources import CandleSourceResource, MarketResource, WarehouseResource
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.candles import upsert_candles
from crypto_assets.warehouse.schema import KEY_COLUMNS, VALUE_COLUMNS, ensure_ingestion_tables
from crypto_assets_tests.helpers import RAW_OHLC, local_mlflow_server, recorded_run
from crypto_assets_tests.planted import BASE, WEAK, panel, planted_labels, random_bars, training_set

pytestmark = pytest.mark.slow
SYMBOLS = "S0-USD,S1-USD,S2-USD"
MODELS = build_model_assets(Timeframe.parse("15m"))
SIGNALS = build_signals_asset(Timeframe.parse("15m"))


@pytest.fixture(scope="module")
def market_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return panel(symbols=3, n_bars=5000, seed=7)


def write_market(warehouse: Warehouse, bars: pd.DataFrame, features: pd.DataFrame) -> None:
    with warehouse.begin() as connection:
        ensure_ingestion_tables(connection)
        upsert_candles(connection, bars[KEY_COLUMNS + VALUE_COLUMNS])
        ensure_features_table(connection)
        replace_features(connection, features, everything=True)


def write_labels(warehouse: Warehouse, strategy: str, labels: pd.DataFrame) -> None:
    with warehouse.begin() as connection:
        ensure_label_table(connection, strategy)
        rewrite_labels(connection, strategy, "15m", labels)


def run(warehouse_url: str, tmp_path: Path, instance: DagsterInstance, assets, config: dict | None = None):
    return materialize(
        assets,
        resources={
            "warehouse": WarehouseResource(url=warehouse_url),
            "market": MarketResource(symbols=SYMBOLS),
            "mlflow": tracking(tmp_path),
        },
        instance=instance,
        run_config={"ops": config or {}},
        raise_on_error=False,
    )


def tracking(tmp_path: Path) -> MlflowResource:
    return MlflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "artifacts")
    )


def model_metadata(result, strategy: str) -> dict:
    [event] = [
        e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(f"{strategy}_model")
    ]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def test_a_strategy_with_too_few_labels_is_skipped_and_the_others_train(
    warehouse_url: str, warehouse: Warehouse, market_data, tmp_path: Path
):
    bars, features = market_data
    write_market(warehouse, bars, features)
    write_labels(warehouse, "dca", planted_labels(features, strategy="dca", seed=1))
    write_labels(warehouse, "swing", planted_labels(features, strategy="swing", seed=2, every=40))
    write_labels(warehouse, "channel", planted_labels(features, strategy="channel", seed=3, every=4))
    with DagsterInstance.ephemeral() as instance:
        result = run(warehouse_url, tmp_path, instance, MODELS)
    assert result.success
    swing = model_metadata(result, "swing")
    assert swing["promotion"] == "skipped" and swing["labels_used"] == 0
    assert "not trained" in swing["promotion_reason"] and "minimum 1000" in swing["promotion_reason"]
    for strategy in ("dca", "channel"):
        meta = model_metadata(result, strategy)
        assert meta["promotion"] == "promoted", meta["promotion_reason"]
        assert meta["model_version"] == meta["champion_version"] == 1
        assert meta["oos_auc"] > 0.65 and meta["labels_used"] >= 1000
        assert "folds" in meta and "mlflow_run" in meta
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert checks[("dca_model", "oos_auc_above_floor")].passed
    assert checks[("dca_model", "beats_base_rate_log_loss")].passed
    balance = checks[("dca_model", "class_balance")]  # planted outcomes: about half take profits
    assert balance.passed and balance.severity == AssetCheckSeverity.WARN
    assert balance.description.startswith("take-profit rate ") and "(bounds 2%..98%)" in balance.description
    assert not checks[("swing_model", "class_balance")].passed, "a skipped training has no rate to check"
    skipped = checks[("swing_model", "no_empty_fold")]  # not trained: says why, as a warning
    assert not skipped.passed and skipped.severity == AssetCheckSeverity.WARN
    assert "minimum 1000" in skipped.description
    no_champion = checks[("swing_model", "has_champion")]
    assert not no_champion.passed and no_champion.description.startswith("no champion: not trained")
    assert checks[("dca_model", "has_champion")].passed and checks[("channel_model", "has_champion")].passed
    assert checks[("dca_model", "no_empty_fold")].severity == AssetCheckSeverity.WARN
    assert tracking(tmp_path).version_by_alias("swing", CHAMPION) is None
    names = {m.name for m in tracking(tmp_path).client().search_registered_models()}
    assert names == {"crypto_assets.dca", "crypto_assets.channel"}, "a skipped strategy registers nothing"


def test_signals_come_from_the_champion_and_follow_a_promotion(
    warehouse_url: str, warehouse: Warehouse, market_data, tmp_path: Path
):
    bars, features = market_data
    write_market(warehouse, bars, features)
    labels = planted_labels(features, strategy="dca", seed=5)
    older = labels[labels["exit_ts"] < labels["entry_ts"].quantile(0.5)]
    weak_only = {"dca_model": {"config": {"features": [WEAK], "promotion_margin": 0.02}}}
    with DagsterInstance.ephemeral() as instance:
        # v1: trained on the older half and a weak feature only; the first version with an edge
        write_labels(warehouse, "dca", older)
        first = run(warehouse_url, tmp_path, instance, [MODELS[0]], weak_only)
        assert model_metadata(first, "dca")["champion_version"] == 1
        scored = run(warehouse_url, tmp_path, instance, [SIGNALS])
        assert scored.success
        v1 = warehouse.query(f"SELECT {', '.join(SIGNAL_COLUMNS)} FROM strategy_signals")
        assert set(v1["model_version"]) == {1} and set(v1["strategy"]) == {"dca"}
        assert sorted(v1["symbol"]) == ["S0-USD", "S1-USD", "S2-USD"]
        assert (pd.to_datetime(v1["ts"], utc=True) == bars["ts"].max()).all(), "the newest bar of each symbol"
        [check] = scored.get_asset_check_evaluations()
        assert not check.passed and "swing" in check.description and "channel" in check.description

        # v2: every label, every feature: beats v1 on the newer labels, so the gate promotes it
        write_labels(warehouse, "dca", labels)
        second = run(
            warehouse_url,
            tmp_path,
            instance,
            [MODELS[0]],
            {"dca_model": {"config": {"promotion_margin": 0.02}}},
        )
        meta = model_metadata(second, "dca")
        assert (meta["promotion"], meta["champion_version"]) == ("promoted", 2), meta["promotion_reason"]
        assert run(warehouse_url, tmp_path, instance, [SIGNALS]).success
        v2 = warehouse.query(f"SELECT {', '.join(SIGNAL_COLUMNS)} FROM strategy_signals")
    assert len(v2) == 3, "same bars scored again replace their rows"
    assert set(v2["model_version"]) == {2}
    assert not v2.set_index("symbol")["probability"].equals(v1.set_index("symbol")["probability"])
    assert (v2["take_trade"] <= v2["entry_signal"]).all(), "only an entry can be a trade"


def test_signals_fail_clearly_without_any_champion(
    warehouse_url: str, warehouse: Warehouse, market_data, tmp_path
):
    bars, features = market_data
    write_market(warehouse, bars, features)
    with DagsterInstance.ephemeral() as instance:
        result = run(warehouse_url, tmp_path, instance, [SIGNALS])
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "no strategy has a champion model yet" in failure.step_failure_data.user_failure_data.description


def test_signals_automation_waits_for_a_models_first_champion(
    warehouse_url: str, warehouse: Warehouse, market_data, tmp_path: Path
):
    """The code location's automation over real model runs: trainings that skip (too few labels)
    request no signals run; the first promotion does; then every new bar does."""
    from crypto_assets.code_location import build_defs
    from crypto_assets.settings import load_settings

    defs = build_defs(load_settings({"CRYPTO_ASSETS_START": "2025-01-01"}))
    bars, features = market_data
    write_market(warehouse, bars, features)
    labels = planted_labels(features, strategy="dca", seed=5)
    for strategy in ("dca", "swing", "channel"):
        write_labels(warehouse, strategy, labels.head(300).assign(strategy=strategy))
    cursor = None

    def tick() -> set[str]:
        nonlocal cursor
        result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        return {r.key.to_user_string() for r in result.results if r.true_subset.size}

    with DagsterInstance.ephemeral() as instance:
        # a day of candles with their checks (signals wait for raw_ohlc's blocking check), then
        # features as its run records them (a stand-in body: the table is written above)
        loaded = materialize(
            [RAW_OHLC, *build_raw_ohlc_checks(RAW_OHLC, Timeframe.parse("15m"))],
            instance=instance, partition_key="2025-03-04",
            resources={
                "warehouse": WarehouseResource(url=warehouse_url),
                "source": CandleSourceResource(spec="synthetic"),
                "market": MarketResource(symbols=SYMBOLS),
            },
        )  # fmt: skip
        assert loaded.success
        recorded_run(instance, "features", {"indicators_valid": True}, AssetCheckSeverity.ERROR)
        assert run(warehouse_url, tmp_path, instance, MODELS).success  # all three skip
        assert "strategy_signals" not in tick()
        recorded_run(instance, "features", {"indicators_valid": True}, AssetCheckSeverity.ERROR)
        assert "strategy_signals" not in tick(), "no champion: no signals run on a new bar"

        write_labels(warehouse, "dca", labels)
        trained = run(warehouse_url, tmp_path, instance, [MODELS[0]])
        assert model_metadata(trained, "dca")["promotion"] == "promoted"
        assert "strategy_signals" in tick()
        assert run(warehouse_url, tmp_path, instance, [SIGNALS]).success
        assert "strategy_signals" not in tick()
        recorded_run(instance, "features", {"indicators_valid": True}, AssetCheckSeverity.ERROR)
        assert "strategy_signals" in tick(), "a new bar is scored"


# --- the entry rule of the signals is the labeller's --------------------------------------------------

#: windows longer than the 400 bars the signals once read whatever the champion's parameters were
RULE_PARAMS = {
    "dca": {"lookback_bars": 500},
    "swing": {"lookback_bars": 450, "volume_lookback_bars": 600},
    "channel": {"lookback_bars": 450, "adx_period": 20},  # ADX warm-up: 600 bars
}
PRICES = ("high", "low", "close", "volume")  # what an entry rule reads, in its order


def newest_bar_fires(strategy: str, params, bars: pd.DataFrame) -> bool:
    """The labeller's rule (labels.strategies) on `bars`: does it enter on the last one?"""
    from crypto_assets.labels.strategies import STRATEGIES

    arrays = [np.ascontiguousarray(bars[c].to_numpy(dtype="float64")) for c in PRICES]
    entries = STRATEGIES[strategy](*arrays, params).entries
    return len(entries) > 0 and entries[-1] == len(bars) - 1


def test_the_rule_on_its_last_rule_bars_decides_as_on_the_whole_history():
    """signals evaluate the entry rule on the last rule_bars(params) bars: every bar is decided as
    the labeller decides it on the whole history (ADX to about 1e-10 after its warm-up), and the
    check can fail: with fewer bars the long windows are not full, or ADX not settled."""
    import talib

    from crypto_assets.labels.strategies import STRATEGIES
    from crypto_assets.models.signals import rule_bars, rule_params

    walk = random_bars(["W"], 2400, seed=3)
    arrays = {c: walk[c].to_numpy(dtype="float64") for c in PRICES}
    for strategy, recorded in RULE_PARAMS.items():
        params = rule_params(strategy, recorded)
        needed = rule_bars(params)
        assert needed > 400
        entries = set(STRATEGIES[strategy](*arrays.values(), params).entries)
        ends = range(needed + 200, len(walk), 3)
        expected = [end in entries for end in ends]
        assert any(expected) and not all(expected), strategy
        fires = [newest_bar_fires(strategy, params, walk.iloc[end - needed + 1 : end + 1]) for end in ends]
        assert fires == expected, strategy
        short = [newest_bar_fires(strategy, params, walk.iloc[end - 399 : end + 1]) for end in ends]
        assert short != expected, f"{strategy}: 400 bars are too few for these parameters"
    hlc = [arrays[c] for c in PRICES[:3]]
    for period in (14, 50):
        needed = rule_bars(rule_params("channel", {"adx_period": period}))
        full = talib.ADX(*hlc, period)[-300:]
        for bars, settled in ((needed, True), (5 * period, False)):
            ends = range(len(walk) - 300, len(walk))
            window = np.array(
                [talib.ADX(*(a[end - bars + 1 : end + 1] for a in hlc), period)[-1] for end in ends]
            )
            error = float(np.max(np.abs(window - full)))
            assert error < 1e-8 if settled else error > 1e-3, (period, bars, error)


def register_champion(tracking: MlflowResource, strategy: str, model, x: pd.DataFrame, **version_tags) -> int:
    """A registered version of `model` holding the alias champion, with the version tags the signals
    read (fit_and_register's: the label parameters and the threshold)."""
    from crypto_assets.models.tracking import log_training, set_alias

    plots = Path(tempfile.mkdtemp(prefix="plots_"))
    _, _, version = log_training(
        tracking, strategy=strategy, run_name="test", tags={}, params={}, metrics={}, fold_metrics=[],
        plots=plots, model=model, input_example=x.head(5), version_tags=version_tags,
    )  # fmt: skip
    set_alias(tracking, strategy, CHAMPION, version)
    return version


def test_entry_signal_is_true_exactly_where_the_labeller_enters(
    warehouse_url: str, warehouse: Warehouse, tmp_path: Path
):
    """Each symbol's newest bar is a bar of one random walk (with a 150-bar gap) on which, for each
    strategy, the labeller on the whole walk does or does not take an entry; strategy_signals must
    say the same in entry_signal, with the parameters each champion's labels were made with (windows
    longer than 400 bars, ADX with its warm-up), and take_trade where the probability is above the
    threshold too. The gap puts fewer bars than the rule needs in the time some symbols' windows
    span: those read their last bars instead."""
    import json

    from crypto_assets.features.indicators import compute_features
    from crypto_assets.labels.strategies import label_bars
    from crypto_assets.models.fit_and_register import STRATEGY_PARAMS_TAG, THRESHOLD_TAG
    from crypto_assets.models.signals import rule_params
    from crypto_assets.models.training import ModelParams, fit_final

    walk = random_bars(["W"], 2600, seed=3).drop(index=range(1100, 1250)).reset_index(drop=True)
    entries = {
        strategy: set(label_bars(strategy, walk, rule_params(strategy, recorded), BASE.seconds)["entry_ts"])
        for strategy, recorded in RULE_PARAMS.items()
    }
    candidates = list(walk["ts"].iloc[1250:2250])  # after the gap; every entry there is closed
    cuts: list[pd.Timestamp] = []
    for strategy in RULE_PARAMS:  # for each strategy a newest bar it enters on and one it does not
        cuts.append(next(ts for ts in candidates if ts in entries[strategy] and ts not in cuts))
        cuts.append(next(ts for ts in candidates if ts not in entries[strategy] and ts not in cuts))
    bars = pd.concat(
        [walk[walk["ts"] <= cut].assign(symbol=f"S{i}-USD") for i, cut in enumerate(cuts)], ignore_index=True
    )
    with np.errstate(all="ignore"):
        features = compute_features(bars)
    write_market(warehouse, bars, features)

    frame = training_set(features, planted_labels(features, strategy="dca", seed=1))
    x = frame[feature_columns(BASE)].astype("float32")
    model = fit_final(x, frame["label"].to_numpy(), ModelParams(max_iter=5))
    thresholds = {"dca": 0.0, "swing": 1.0, "channel": 0.0}  # swing never trades: p < 1
    mlflow = tracking(tmp_path)
    for strategy, recorded in RULE_PARAMS.items():
        register_champion(
            mlflow, strategy, model, x,
            **{STRATEGY_PARAMS_TAG: json.dumps(recorded), THRESHOLD_TAG: repr(thresholds[strategy])},
        )  # fmt: skip
    with DagsterInstance.ephemeral() as instance:
        assert run(warehouse_url, tmp_path, instance, [SIGNALS]).success
    rows = warehouse.query(f"SELECT {', '.join(SIGNAL_COLUMNS)} FROM strategy_signals")
    rows["ts"] = pd.to_datetime(rows["ts"], utc=True)
    assert len(rows) == 3 * len(cuts)
    for strategy in RULE_PARAMS:
        scored = rows[rows["strategy"] == strategy].sort_values("symbol")
        assert list(scored["ts"]) == [cuts[int(s[1:].split("-")[0])] for s in scored["symbol"]]
        expected = [ts in entries[strategy] for ts in scored["ts"]]
        assert any(expected) and not all(expected), strategy
        assert [bool(v) for v in scored["entry_signal"]] == expected, strategy
        trades = scored["entry_signal"].astype(bool) & (scored["probability"] > scored["threshold"])
        assert [bool(v) for v in scored["take_trade"]] == list(trades), strategy
        assert scored["take_trade"].astype(bool).any() == (strategy != "swing"), strategy


# --- secrets ---------------------------------------------------------------------------------------

PASSWORD = "pw-4f1c9e2b7d"  # in the tracking server's URL and the PostgreSQL warehouse URL
SECRETS = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.test/services/T000/B000/slack-7a61c0",
    "CRYPTO_ASSETS_ALERT_WEBHOOK": "https://alerts.test/hook?token=hook-93be01",
    "AWS_SECRET_ACCESS_KEY": "aws-0d5e8f3a1b",
    "PIP_INDEX_URL": "https://ci:pip-2c4e6a@pypi.internal.test/simple",
    "DAGSTER_PG_PASSWORD": "dagster-pg-5b7d9f",
}
LABEL_PARAM_SECRET = "sk-label-8e2f4a6c"  # recorded beside the label parameters
RUN_TAG_SECRET = "tag-1d3f5b7e"  # a tag of the Dagster run


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real MLflow tracking server on loopback (SQLite store, proxied artifacts): (host:port, its
    folder)."""
    folder = tmp_path / "mlflow-server"
    folder.mkdir()
    with local_mlflow_server(folder) as host:
        yield host, folder


def with_password(url: str) -> str:
    """A PostgreSQL URL with a password (the test server trusts loopback: it is ignored)."""
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1) if url.startswith("postgresql") else url


def leaked(text: str | bytes, what: Iterable[str]) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode(errors="replace")
    return [secret for secret in what if secret.encode() in data]


def test_no_secret_reaches_mlflow_the_logs_or_the_artifacts(
    warehouse_url: str,
    warehouse: Warehouse,
    market_data,
    tmp_path: Path,
    mlflow_server,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
):
    from dagster import AssetMaterialization, MetadataValue
    from dagster_shared.serdes import serialize_value
    from mlflow import MlflowClient

    host, server_folder = mlflow_server
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    everything = [PASSWORD, LABEL_PARAM_SECRET, RUN_TAG_SECRET, *SECRETS.values()]
    bars, features = market_data
    write_market(warehouse, bars, features)
    write_labels(warehouse, "dca", planted_labels(features, strategy="dca", seed=5))
    resources = {
        "warehouse": WarehouseResource(url=with_password(warehouse_url)),
        "market": MarketResource(symbols=SYMBOLS),
        "mlflow": MlflowResource(
            tracking_uri=f"http://crypto:{PASSWORD}@{host}", artifact_root=str(tmp_path / "unused")
        ),
    }
    with DagsterInstance.ephemeral() as instance:
        # the label asset records its parameters; something secret-looking recorded beside them
        instance.report_runless_asset_event(
            AssetMaterialization(
                "strategy_dca_labels",
                metadata={"params": MetadataValue.json({"drop_pct": 5.0, "api_key": LABEL_PARAM_SECRET})},
            )
        )
        trained = materialize(
            [MODELS[0]], resources=resources, instance=instance, tags={"deploy/token": RUN_TAG_SECRET}
        )
        scored = materialize([SIGNALS], resources=resources, instance=instance)
        assert trained.success and scored.success
        assert model_metadata(trained, "dca")["promotion"] == "promoted"
        events = [serialize_value(e) for r in (trained, scored) for e in instance.all_logs(r.run_id)]

        # the server unreachable: the step fails, and its error names the server without the password
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        closed = f"http://crypto:{PASSWORD}@127.0.0.1:9"
        failed = materialize(
            [MODELS[0]],
            resources={**resources, "mlflow": MlflowResource(tracking_uri=closed, artifact_root="/tmp/x")},
            instance=instance,
            raise_on_error=False,
        )
        assert not failed.success
        [failure] = failed.get_step_failure_events()
        assert "127.0.0.1:9" in str(failure.step_failure_data.error), "the error still says where"
        events += [serialize_value(e) for e in instance.all_logs(failed.run_id)]

    client = MlflowClient(f"http://{host}", registry_uri=f"http://{host}")  # no credentials needed
    experiment = client.get_experiment_by_name("crypto_assets.dca")
    [mlflow_run] = client.search_runs([experiment.experiment_id])
    assert mlflow_run.data.params["strategy.drop_pct"] == "5.0"
    assert not any(key.startswith("strategy.api") for key in mlflow_run.data.params)
    [version] = client.search_model_versions("name = 'crypto_assets.dca'")
    logged = " ".join(
        [
            *mlflow_run.data.params.values(), *mlflow_run.data.tags.values(), *version.tags.values(),
            *experiment.tags.values(), str(experiment.artifact_location), version.source or "",
        ]
    )  # fmt: skip
    assert leaked(logged, everything) == [], "params and tags"
    assert leaked("\n".join(events), everything) == [], "the Dagster runs' event logs"
    output = capfd.readouterr()
    assert leaked(output.out + output.err, everything) == [], "stdout and stderr"
    files = [path for path in server_folder.rglob("*") if path.is_file()]
    assert any(path.name == "MLmodel" for path in files) and any(path.suffix == ".png" for path in files)
    for path in files:  # the artifacts (model, environment files, plots) and the server's store
        assert leaked(path.read_bytes(), everything) == [], path
