"""Strategy models: leakage-safe folds, honest scores, the champion gate, against a real MLflow store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crypto_assets.models.dataset import feature_columns
from crypto_assets.models.fit_and_register import TrainingSettings, fit_and_register
from crypto_assets.models.tracking import CHALLENGER, CHAMPION, MlflowResource, registered_name
from crypto_assets.models.training import walk_forward
from crypto_assets.models.validation import walk_forward_folds
from crypto_assets_tests.planted import BASE, STRONG, WEAK, panel, planted_labels, training_set


@pytest.fixture
def tracking(tmp_path: Path) -> MlflowResource:
    """A real MLflow tracking store and registry in a temporary folder."""
    return MlflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "artifacts")
    )


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    _, features = panel(symbols=4, n_bars=4000, seed=1)
    return training_set(features, planted_labels(features, strategy="dca", seed=2))


def settings(**overrides) -> TrainingSettings:
    return TrainingSettings(**{"min_labels": 500, **overrides})


def train(tracking: MlflowResource, frame: pd.DataFrame, **overrides):
    return fit_and_register(
        frame, strategy="dca", base=BASE, strategy_params={"drop_pct": 5.0}, settings=settings(**overrides),
        tracking=tracking, tags={"dagster_run_id": "test-run"},
    )  # fmt: skip


# --- folds ---------------------------------------------------------------------------------------


def test_purge_and_embargo_hold_on_every_fold():
    """Checked on the indices each fold really uses: a panel of symbols sharing timestamps, label
    windows of random length, so rows near each fold's leading edge overlap it."""
    rng = np.random.default_rng(5)
    entry = pd.Series(
        pd.to_datetime(np.sort(rng.integers(0, 20_000, 6000)) * 900, unit="s", utc=True)
    )  # several rows per timestamp
    exit_ = entry + pd.to_timedelta(rng.integers(1, 97, len(entry)) * 900, unit="s")
    bar, embargo = timedelta(minutes=15), timedelta(hours=24)
    folds = walk_forward_folds(entry, exit_, n_folds=4, test_fraction=0.5, bar=bar, embargo=embargo)
    assert len(folds) == 4
    tested = np.concatenate([f.test for f in folds])
    assert np.array_equal(tested, np.arange(len(entry) - len(tested), len(entry))), "tiles the end"
    for fold in folds:
        assert len(fold.train) > 0
        test_start = entry.iloc[fold.test].min()
        test_end = (exit_.iloc[fold.test] + bar).max()
        label_end = exit_.iloc[fold.train] + bar  # half-open: the exit bar is part of the label
        # purge from the fold's first *entry*, plus the embargo gap before it
        assert (label_end <= test_start - embargo).all()
        assert (entry.iloc[fold.train] < test_start).all()
        # nothing trained on lies in the embargo after the fold either
        after = entry.iloc[fold.train]
        assert not ((after >= test_end) & (after <= test_end + embargo)).any()
        # the purge really removed rows: the ones just before the fold are gone
        candidates = np.arange(fold.test.min())
        assert len(fold.train) < len(candidates)


def test_a_label_whose_exit_bar_is_in_the_test_fold_is_purged():
    """A label is known at the close of its exit bar: [entry_ts, exit_ts + bar), half-open."""
    entry = pd.Series(pd.to_datetime([0, 900, 1800, 2700, 3600, 4500], unit="s", utc=True))
    exit_ = entry + pd.Timedelta(seconds=900)
    exit_.iloc[1] = entry.iloc[4]  # row 1 runs into the test fold (rows 4 and 5)
    bar = timedelta(minutes=15)
    [fold] = walk_forward_folds(entry, exit_, n_folds=1, test_fraction=0.34, bar=bar, embargo=timedelta(0))
    assert fold.test.tolist() == [4, 5]
    # row 3 exits on the bar opening at the fold's first entry: purged; row 2 ends exactly there: kept
    assert fold.train.tolist() == [0, 2]


def walk_forward_on(frame: pd.DataFrame):
    """Four purged folds over `frame` (a training set) and the default model's out-of-sample results."""
    folds = walk_forward_folds(
        frame["entry_ts"], frame["exit_ts"], n_folds=4, test_fraction=0.5, bar=BASE.delta,
        embargo=timedelta(hours=12),
    )  # fmt: skip
    x = frame[feature_columns(BASE)].astype("float32")
    y, returns = frame["label"].to_numpy(), frame["realized_return"].to_numpy()
    return walk_forward(x, y, returns, frame["entry_ts"], folds, settings().model)


# --- scores ----------------------------------------------------------------------------------------


def test_permuted_labels_give_an_out_of_sample_auc_of_one_half(planted: pd.DataFrame):
    """Leakage canary: with outcomes shuffled across entries there is nothing to learn; a pipeline
    that leaks (random validation split, unpurged folds, future features) would still score."""
    frame = planted.copy()
    rng = np.random.default_rng(11)
    permuted = rng.permutation(len(frame))
    frame["label"] = frame["label"].to_numpy()[permuted]
    frame["realized_return"] = frame["realized_return"].to_numpy()[permuted]
    result = walk_forward_on(frame)
    assert abs(result.overall["roc_auc"] - 0.5) <= 0.05, result.overall
    assert result.overall["brier_skill"] <= 0.01


def test_a_planted_signal_is_found_out_of_sample(planted: pd.DataFrame):
    result = walk_forward_on(planted)
    overall = result.overall
    assert overall["roc_auc"] > 0.7 and overall["brier_skill"] > 0.05
    assert overall["log_loss"] < overall["log_loss_naive"]
    assert overall["mean_return_taken"] > overall["mean_return_all"]
    assert len(result.folds) == 4 and (result.folds["rows"] > 0).all()


# --- MLflow and the champion gate -----------------------------------------------------------------


def test_training_twice_gives_the_same_metrics_and_keeps_the_champion(
    tracking: MlflowResource, planted: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    secret = "https://hooks.slack.test/services/T000/B000/very-secret"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", secret)
    monkeypatch.chdir(tmp_path)
    first = train(tracking, planted)
    second = train(tracking, planted)
    assert first.overall == second.overall
    assert (first.promotion, first.version, first.champion_version) == ("promoted", 1, 1)
    # the same data again: no label is newer than champion v1's training, so there is nothing to
    # compare them on and the champion stays
    assert (second.promotion, second.version, second.champion_version) == ("refused", 2, 1)
    assert "newer than champion v1" in second.reason
    client = tracking.client()
    name = registered_name("dca")
    assert int(client.get_model_version_by_alias(name, CHAMPION).version) == 1
    assert int(client.get_model_version_by_alias(name, CHALLENGER).version) == 2

    run = client.get_run(client.get_model_version(name, "1").run_id)
    assert run.data.tags["dagster_run_id"] == "test-run"
    assert run.data.params["features"] == ",".join(feature_columns(BASE))
    assert {"oos_roc_auc", "oos_log_loss", "oos_brier", "oos_base_rate", "oos_win_rate_taken"} <= set(
        run.data.metrics
    )
    logged = {item.path for item in client.list_artifacts(run.info.run_id, "plots")}
    assert logged == {
        f"plots/{n}"
        for n in ("feature_importance.png", "calibration_curve.png", "roc_curve.png", "cumulative_return.png")
    }
    everything = " ".join([*run.data.params.values(), *run.data.tags.values()])
    assert secret not in everything and "hooks.slack" not in everything
    assert not (tmp_path / "mlruns").exists(), "artifacts go under the configured root, not ./mlruns"
    assert any((tmp_path / "artifacts").rglob("roc_curve.png"))


def test_the_gate_keeps_a_champion_that_is_not_beaten_and_promotes_one_that_is(tracking: MlflowResource):
    _, features = panel(symbols=4, n_bars=6000, seed=3)
    everything = training_set(features, planted_labels(features, strategy="dca", seed=4))
    cut = everything["entry_ts"].quantile(0.5)
    older = everything[everything["exit_ts"] < cut]
    margin = {"promotion_margin": 0.02}

    weak = train(tracking, older, features=[WEAK], **margin)
    assert (weak.promotion, weak.champion_version) == ("promoted", 1), weak.reason  # an edge, first

    # more data; a challenger built the same way is no better on the new labels: the champion stays
    same = train(tracking, everything, features=[WEAK], **margin)
    assert (same.promotion, same.champion_version) == ("refused", 1), same.reason
    assert "vs champion v1" in same.reason

    # one with no signal at all is refused (for no edge, or for losing to v1 when luck gave it one)
    noise = train(tracking, everything, features=["hour_of_day"], **margin)
    assert (noise.promotion, noise.champion_version) == ("refused", 1)
    assert "v3 not promoted" in noise.reason

    # one that sees the strong signal beats v1 on the same out-of-sample labels
    strong = train(tracking, everything, features=[STRONG, WEAK], **margin)
    assert (strong.promotion, strong.champion_version) == ("promoted", 4), strong.reason
    assert int(tracking.version_by_alias("dca", CHAMPION).version) == 4


def test_without_an_edge_there_is_no_champion(tracking: MlflowResource, planted: pd.DataFrame):
    report = train(tracking, planted, features=["hour_of_day", "day_of_week"])
    assert report.promotion == "refused" and report.version == 1
    assert report.champion_version is None
    assert tracking.version_by_alias("dca", CHAMPION) is None
    assert int(tracking.version_by_alias("dca", CHALLENGER).version) == 1


def test_too_few_labels_is_a_skip_and_registers_nothing(tracking: MlflowResource, planted: pd.DataFrame):
    report = train(tracking, planted.head(300))
    assert report.promotion == "skipped" and report.version is None
    assert "300 closed labels" in report.reason and "minimum 500" in report.reason
    assert tracking.client().search_registered_models() == []


def test_mlflow_tracking_uri_is_described_without_its_password():
    resource = MlflowResource(
        tracking_uri="postgresql://mlflow:s3cret@db:5432/mlflow", artifact_root="/tmp/a"
    )
    assert "s3cret" not in resource.describe()
    server = MlflowResource(tracking_uri="http://user:pw@mlflow:5000", artifact_root="/tmp/a")
    assert server.uses_server and "pw" not in server.run_link("1", "abc")


# --- automation ------------------------------------------------------------------------------------


def test_new_candles_rescore_signals_but_do_not_retrain_models(tmp_path: Path):
    from dagster import (
        AssetCheckEvaluation,
        AssetCheckSeverity,
        AssetKey,
        AssetMaterialization,
        DagsterInstance,
        DefaultSensorStatus,
        evaluate_automation_conditions,
        materialize,
    )

    from crypto_assets.definitions import defs
    from crypto_assets.ingestion.assets import build_raw_ohlc
    from crypto_assets.ingestion.checks import build_raw_ohlc_checks
    from crypto_assets.resources import CandleSourceResource, MarketResource, WarehouseResource
    from crypto_assets.settings import load_settings

    signals_sensor = next(s for s in defs.sensors if s.name == "signals_automation")
    assert signals_sensor.default_status == DefaultSensorStatus.RUNNING
    settings = load_settings()
    raw_ohlc = build_raw_ohlc(settings.start, settings.timeframe)  # the code location's, unbound
    with DagsterInstance.ephemeral() as instance:
        first = evaluate_automation_conditions(defs=defs, instance=instance)
        # the schedule's run: new candles and their checks (blocking ones hold what is downstream)
        loaded = materialize(
            [raw_ohlc, *build_raw_ohlc_checks(raw_ohlc, settings.timeframe)],
            instance=instance,
            partition_key=raw_ohlc.partitions_def.get_last_partition_key(),
            resources={
                "warehouse": WarehouseResource(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}"),
                "source": CandleSourceResource(spec="synthetic"),
                "market": MarketResource(symbols="BTC-USD"),
            },
        )
        assert loaded.success
        # each model trained once (signals wait for that), then new features
        for key in ("dca_model", "swing_model", "channel_model", "features"):
            instance.report_runless_asset_event(AssetMaterialization(key))
        instance.report_runless_asset_event(  # what the features run records with it
            AssetCheckEvaluation(
                asset_key=AssetKey("features"), check_name="features_valid", passed=True,
                severity=AssetCheckSeverity.ERROR, blocking=True,
            )
        )  # fmt: skip
        second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    requested = {r.key.to_user_string() for r in second.results if r.true_subset.size}
    assert "strategy_signals" in requested
    assert not requested & {"dca_model", "swing_model", "channel_model"}, "models retrain on a cadence"
    targeted = signals_sensor.asset_selection.resolve(defs.resolve_asset_graph())
    assert {key.to_user_string() for key in targeted} == {"strategy_signals"}
