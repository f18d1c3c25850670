"""Strategy models: leakage-safe folds, honest scores, the champion gate, against a real MLflow store."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crypto_assets.market import Timeframe
from crypto_assets.models.dataset import feature_columns
from crypto_assets.models.fit_and_register import TrainingSettings, fit_and_register
from crypto_assets.models.tracking import CHALLENGER, CHAMPION, MlflowResource, registered_name
from crypto_assets.models.training import fit_final, walk_forward
from crypto_assets.models.validation import walk_forward_folds
from crypto_assets_tests.helpers import recorded_run
from crypto_assets_tests.planted import BASE, STRONG, T0, WEAK, panel, planted_labels, training_set


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


def leaks(entry: pd.Series, exit_: pd.Series, fold, bar: timedelta, embargo: timedelta) -> list[str]:
    """What is wrong with one fold's training rows, from the actual indices: a training row that is
    not before the fold, whose label window [entry, exit + bar) reaches into the embargo gap before
    the fold's first *entry* or into the fold itself; or a row that the rule allows but was dropped
    (over-purging, which would hide a wrong purge behind a smaller training set)."""
    test_start = entry.iloc[fold.test].min()
    label_end = exit_ + bar  # half-open: the exit bar is part of the label
    allowed = np.flatnonzero(((entry < test_start) & (label_end <= test_start - embargo)).to_numpy())
    train = np.asarray(fold.train)
    problems = []
    if not (entry.iloc[train] < test_start).all():
        problems.append(f"fold {fold.number}: training rows at or after the fold's first entry")
    reaching = train[(label_end.iloc[train] > test_start - embargo).to_numpy()]
    if len(reaching):
        worst = label_end.iloc[reaching].max()
        problems.append(
            f"fold {fold.number}: {len(reaching)} training label(s) end within {test_start - worst} "
            f"of the fold's first entry (embargo {embargo})"
            if worst <= test_start
            else f"fold {fold.number}: {len(reaching)} training label(s) overlap the test fold"
        )
    if len(np.setdiff1d(allowed, train)):
        problems.append(f"fold {fold.number}: {len(np.setdiff1d(allowed, train))} allowed row(s) dropped")
    return problems


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
        assert leaks(entry, exit_, fold, bar, embargo) == []
        # the purge and the embargo really removed rows: some that precede the fold are not trained on
        assert len(fold.train) < fold.test.min()

    # the classic bug, caught by the same checker: purging from the first test label's *exit*
    # instead of its entry keeps training labels that run into the embargo gap or the fold
    latest = folds[-1]
    first_exit = exit_.iloc[latest.test[0]] + bar
    wrong = np.flatnonzero(
        ((entry < entry.iloc[latest.test[0]]) & (exit_ + bar <= first_exit - embargo)).to_numpy()
    )
    found = leaks(entry, exit_, replace(latest, train=wrong), bar, embargo)
    assert found and "end within" in found[0], found
    # and so is a purge without the embargo gap
    no_gap = np.flatnonzero(
        ((entry < entry.iloc[latest.test[0]]) & (exit_ + bar <= entry.iloc[latest.test[0]])).to_numpy()
    )
    assert leaks(entry, exit_, replace(latest, train=no_gap), bar, embargo)


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


def walk_forward_on(frame: pd.DataFrame, extra: list[str] | None = None, **params):
    """Four purged folds over `frame` (a training set) and the default model's out-of-sample results
    (`extra` columns of `frame` added to the features, `params` overriding the model's)."""
    folds = walk_forward_folds(
        frame["entry_ts"], frame["exit_ts"], n_folds=4, test_fraction=0.5, bar=BASE.delta,
        embargo=timedelta(hours=12),
    )  # fmt: skip
    x = frame[[*feature_columns(BASE), *(extra or [])]].astype("float32")
    y, returns = frame["label"].to_numpy(), frame["realized_return"].to_numpy()
    model = replace(settings().model, **params)
    return walk_forward(x, y, returns, frame["entry_ts"], folds, model)


# --- what a model sees ----------------------------------------------------------------------------


def resample(bars: pd.DataFrame, timeframe: Timeframe) -> pd.DataFrame:
    """Complete buckets of `timeframe` from base bars (what dbt's ohlc_<tf> keeps as complete)."""
    frame = bars.assign(bucket=bars["ts"].dt.floor(f"{timeframe.seconds}s"))
    grouped = frame.sort_values("ts").groupby(["exchange", "symbol", "bucket"], as_index=False)
    buckets = grouped.agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
        volume=("volume", "sum"), bars=("ts", "size"),
    )  # fmt: skip
    complete = buckets[buckets["bars"] == timeframe.seconds // BASE.seconds]
    return complete.drop(columns="bars").rename(columns={"bucket": "ts"}).assign(timeframe=timeframe.name)


def test_coarse_features_are_joined_as_of_the_entry_bars_close(warehouse):
    """Through the warehouse, on resampled bars and their real features: each entry gets, per
    coarser timeframe, the newest bucket that had closed by the entry bar's close (an entry at
    10:45 closes at 11:00 and sees the 10:00 hour; one at 10:30 sees 09:00), never one closing
    after it. The reference is pandas' merge_asof on close times, an independent implementation."""
    from crypto_assets.features.indicators import compute_features
    from crypto_assets.features.store import ensure_features_table, replace_features
    from crypto_assets.labels.store import ensure_label_table, label_table, rewrite_labels
    from crypto_assets.models.dataset import (
        COARSE_FEATURES,
        attach_coarse,
        coarse_timeframes,
        read_newest_entries,
        read_training_set,
    )

    bars, base_features = panel(symbols=2, n_bars=1500, seed=9)
    coarse = [compute_features(resample(bars, tf)) for tf in coarse_timeframes(BASE)]
    labels = planted_labels(base_features, strategy="dca", seed=3, every=1)
    with warehouse.begin() as connection:
        ensure_features_table(connection)
        replace_features(connection, pd.concat([base_features, *coarse], ignore_index=True), everything=True)
        ensure_label_table(connection, "dca")
        rewrite_labels(connection, "dca", BASE.name, labels)
    with warehouse.read() as connection:
        joined = read_training_set(connection, label_table("dca"), BASE)
    assert len(joined) == len(labels) and joined["has_features"].all()

    entry_ts = joined["entry_ts"].astype("datetime64[ns, UTC]")
    entries = joined.assign(entry_ts=entry_ts, close=entry_ts + BASE.delta).sort_values("close")
    for tf, features in zip(coarse_timeframes(BASE), coarse, strict=True):
        columns = [f"{tf.name}_{name}" for name in COARSE_FEATURES]
        bucket_ts = features["ts"].astype("datetime64[ns, UTC]")
        buckets = features.assign(ts=bucket_ts, bucket_close=bucket_ts + tf.delta).rename(
            columns=dict(zip(COARSE_FEATURES, columns, strict=True))
        )
        buckets = buckets.sort_values("bucket_close")[["exchange", "symbol", "bucket_close", "ts", *columns]]
        expected = pd.merge_asof(
            entries[["exchange", "symbol", "entry_ts", "close"]], buckets, left_on="close",
            right_on="bucket_close", by=["exchange", "symbol"], direction="backward",
        )  # fmt: skip
        assert (
            expected["bucket_close"].dropna() <= expected.loc[expected["bucket_close"].notna(), "close"]
        ).all()
        on_the_close = expected["bucket_close"] == expected["close"]
        assert on_the_close.any() and (~on_the_close & expected["bucket_close"].notna()).any()
        actual = entries[columns].astype("float64").reset_index(drop=True)
        pd.testing.assert_frame_equal(actual, expected[columns].astype("float64"), check_names=False)
        # the check can fail: the bucket holding the entry (it closes after the entry) differs
        holding = entries.assign(ts=entries["entry_ts"].dt.floor(f"{tf.seconds}s"))
        leaked = holding[["exchange", "symbol", "ts"]].merge(
            buckets[["exchange", "symbol", "ts", columns[0]]], how="left"
        )
        assert (leaked[columns[0]].to_numpy() != actual[columns[0]].to_numpy()).mean() > 0.5

    # what signals score: the newest bar of each series, joined the same way from a read narrowed
    # to the recent buckets
    with warehouse.read() as connection:
        newest = read_newest_entries(connection, BASE)
    assert len(newest) == 2 and (newest["entry_ts"] == bars["ts"].max()).all()
    reference = attach_coarse(newest[["exchange", "symbol", "entry_ts"]], pd.concat(coarse), BASE)
    coarse_columns = [c for c in feature_columns(BASE) if c not in newest.columns[:3] and c[0].isdigit()]
    assert newest[coarse_columns].notna().all().all()
    pd.testing.assert_frame_equal(
        newest[coarse_columns].reset_index(drop=True).astype("float64"),
        reference[coarse_columns].reset_index(drop=True).astype("float64"),
    )


# --- scores ----------------------------------------------------------------------------------------


def test_scores_of_a_tiny_example_are_the_hand_computed_ones():
    """evaluation.scores on four entries, every value worked out by hand: outcomes 1 0 1 0,
    probabilities .8 .7 .6 .2, naive forecasts .4 .4 .6 .6, the first three taken."""
    import math

    from crypto_assets.models.evaluation import scores

    y = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.7, 0.6, 0.2])
    returns = np.array([0.04, -0.02, 0.01, -0.03])
    got = scores(y, p, returns, taken=p > 0.5, naive=np.array([0.4, 0.4, 0.6, 0.6]))
    brier = (0.2**2 + 0.7**2 + 0.4**2 + 0.2**2) / 4  # 0.1825
    brier_naive = (0.6**2 + 0.4**2 + 0.4**2 + 0.6**2) / 4  # 0.26
    expected = {
        "rows": 4.0,
        "base_rate": 0.5,
        # positive vs negative pairs ranked right: (.8,.7) (.8,.2) (.6,.2), not (.6,.7): 3 of 4
        "roc_auc": 0.75,
        "log_loss": -(math.log(0.8) + math.log(0.3) + math.log(0.6) + math.log(0.8)) / 4,
        "log_loss_naive": -(math.log(0.4) + math.log(0.6) + math.log(0.6) + math.log(0.4)) / 4,
        "brier": brier,
        "brier_skill": 1 - brier / brier_naive,  # 0.2981
        "trades": 3.0,
        "precision": 2 / 3,
        "win_rate_taken": 2 / 3,
        "win_rate_all": 0.5,
        "mean_return_taken": (0.04 - 0.02 + 0.01) / 3,
        "mean_return_all": (0.04 - 0.02 + 0.01 - 0.03) / 4,
    }
    assert got == pytest.approx(expected, abs=1e-12)
    assert got["brier_skill"] == pytest.approx(0.298077, abs=1e-6)

    # certain and wrong: log loss is finite (probabilities clipped to 1e-6); nothing taken: no win
    # rate or return of the taken trades; one outcome only: no AUC
    half = np.array([0.5, 0.5])
    edge = scores(np.array([0, 1]), np.array([1.0, 0.0]), np.array([-0.02, 0.03]), taken=half > 1, naive=half)
    assert edge["log_loss"] == pytest.approx(-math.log(1e-6))
    assert (
        edge["trades"] == 0 and math.isnan(edge["win_rate_taken"]) and math.isnan(edge["mean_return_taken"])
    )
    taken = np.array([True, False])
    same = scores(np.array([1, 1]), np.array([0.6, 0.7]), np.array([0.03, 0.03]), taken=taken, naive=half)
    assert math.isnan(same["roc_auc"]) and same["win_rate_taken"] == 1.0 and same["mean_return_taken"] == 0.03


def test_permuted_labels_give_an_out_of_sample_auc_of_one_half(planted: pd.DataFrame):
    """Leakage canary: with outcomes shuffled across entries (each keeps its realized return) no
    feature can predict them, so out-of-sample AUC must be 0.5 +/- 0.05. It catches a feature that
    travels with the outcome (the return, the exit, anything joined from the label row) and scores
    that are not out of sample (predictions of rows the model was fitted on). It does not catch
    unpurged folds or features from the future: shuffled outcomes no longer overlap in time nor
    depend on prices; those are the purge/embargo test's and the coarse-join test's."""
    frame = planted.copy()
    rng = np.random.default_rng(11)
    permuted = rng.permutation(len(frame))
    frame["label"] = frame["label"].to_numpy()[permuted]
    frame["realized_return"] = frame["realized_return"].to_numpy()[permuted]
    result = walk_forward_on(frame)
    assert abs(result.overall["roc_auc"] - 0.5) <= 0.05, result.overall
    assert result.overall["brier_skill"] <= 0.01
    # the canary can fail: the same shuffled outcomes with their realized return as a feature
    leaked = walk_forward_on(frame.assign(leak=frame["realized_return"]), extra=["leak"])
    assert leaked.overall["roc_auc"] > 0.9, leaked.overall


def test_early_stopping_is_off_above_10000_rows():
    """HistGradientBoosting's early_stopping="auto" turns on above 10,000 rows and scores on a
    *random* validation split of the training rows: future rows, a leak. Ours trains every
    iteration on every training row, whatever validation_fraction says."""
    rng = np.random.default_rng(3)
    n = 16_000  # the latest fold trains on more than 10,000 rows
    frame = pd.DataFrame(rng.normal(size=(n, len(feature_columns(BASE)))), columns=feature_columns(BASE))
    frame["entry_ts"] = T0 + pd.to_timedelta(np.arange(n) // 2 * 900, unit="s")  # 2 symbols per bar
    frame["exit_ts"] = frame["entry_ts"] + pd.to_timedelta(rng.integers(1, 9, n) * 900, unit="s")
    frame["label"] = (rng.random(n) < 0.3).astype(int)  # noise: early stopping would stop early
    frame["realized_return"] = np.where(frame["label"] == 1, 0.03, -0.02)
    result = walk_forward_on(frame, max_iter=40)
    classifier = result.latest_model.named_steps["classifier"]
    assert len(result.latest_fold.train) > 10_000
    assert classifier.early_stopping is False
    assert classifier.n_iter_ == 40, "every iteration ran: no validation split stopped it"
    # the test can fail: the same rows with scikit-learn's default do stop early
    from sklearn.base import clone

    x = frame[feature_columns(BASE)].astype("float32").iloc[result.latest_fold.train]
    y = frame["label"].to_numpy()[result.latest_fold.train]
    default = clone(classifier).set_params(early_stopping="auto").fit(x, y)
    assert default.n_iter_ < 40
    other_split = clone(classifier).set_params(validation_fraction=0.5).fit(x, y)
    assert np.array_equal(other_split.predict_proba(x), classifier.predict_proba(x))


def test_a_planted_signal_is_found_out_of_sample(planted: pd.DataFrame):
    result = walk_forward_on(planted)
    overall = result.overall
    assert overall["roc_auc"] > 0.7 and overall["brier_skill"] > 0.05
    assert overall["log_loss"] < overall["log_loss_naive"]
    assert overall["mean_return_taken"] > overall["mean_return_all"]
    assert len(result.folds) == 4 and (result.folds["rows"] > 0).all()


def test_a_latest_fold_with_one_outcome_is_a_clear_skip(tracking: MlflowResource, planted: pd.DataFrame):
    """No take profit at all (or only take profits): nothing to learn, nothing registered."""
    frame = planted.assign(label=0, realized_return=-0.02)
    report = train(tracking, frame)
    assert (report.promotion, report.version, report.folds) == ("skipped", None, None)
    assert "not trained: the latest fold's" in report.reason and "no take profit" in report.reason
    assert tracking.client().search_registered_models() == []


def test_the_latest_model_is_the_latest_folds_never_an_older_ones(planted: pd.DataFrame):
    """walk_forward fits the model the champion gate compares on the latest fold's training rows;
    when those hold one outcome it refuses instead of handing back an older fold's model."""
    folds = walk_forward_folds(
        planted["entry_ts"], planted["exit_ts"], n_folds=4, test_fraction=0.5, bar=BASE.delta,
        embargo=timedelta(hours=12),
    )  # fmt: skip
    x = planted[feature_columns(BASE)].astype("float32")
    y, returns = planted["label"].to_numpy(), planted["realized_return"].to_numpy()
    result = walk_forward(x, y, returns, planted["entry_ts"], folds, settings().model)
    assert result.latest_fold is folds[-1]
    refit = fit_final(x.iloc[folds[-1].train], y[folds[-1].train], settings().model)
    probe = x.iloc[folds[-1].test]
    assert np.array_equal(result.latest_model.predict_proba(probe), refit.predict_proba(probe))

    # an older fold that trains, and a latest fold whose training rows are take profits only
    ones = folds[-1].train[y[folds[-1].train] == 1]
    with pytest.raises(ValueError, match="the latest fold"):
        walk_forward(
            x, y, returns, planted["entry_ts"], [folds[0], replace(folds[-1], train=ones)], settings().model
        )


def test_the_number_of_threads_does_not_change_the_model(planted: pd.DataFrame):
    """Training runs on one OpenMP thread by default (ModelConfig.threads): faster on a shared
    machine, and the same model as with more."""
    from threadpoolctl import threadpool_info

    from crypto_assets.models.training import limited_threads

    x = planted[feature_columns(BASE)].astype("float32")
    y = planted["label"].to_numpy()
    probabilities = []
    for threads in (1, 2):
        with limited_threads(threads):
            openmp = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"}
            assert openmp == {threads}, "the limit applies to scikit-learn's OpenMP runtime"
            probabilities.append(fit_final(x, y, settings().model).predict_proba(x))
    assert np.array_equal(*probabilities)


def test_permutation_importance_matches_scikit_learns(planted: pd.DataFrame):
    """The plot's importance (every shuffled copy scored in one call) agrees with
    sklearn.inspection.permutation_importance and ranks the planted strong signal first."""
    from sklearn.inspection import permutation_importance as sklearn_importance

    from crypto_assets.models.plots import IMPORTANCE_ROWS, permutation_importance

    result = walk_forward_on(planted)
    latest = result.latest_fold.test
    x = planted[feature_columns(BASE)].astype("float32").iloc[latest]
    y = planted["label"].to_numpy()[latest]
    mean, std = permutation_importance(result.latest_model, x, y)
    assert x.columns[int(np.argmax(mean))] == STRONG and (std >= 0).all()
    rows = np.linspace(0, len(x) - 1, min(len(x), IMPORTANCE_ROWS)).astype(int)
    reference = sklearn_importance(
        result.latest_model, x.iloc[rows], y[rows], scoring="neg_log_loss", n_repeats=3, random_state=0
    )
    assert np.corrcoef(mean, reference.importances_mean)[0, 1] > 0.95


# --- MLflow and the champion gate -----------------------------------------------------------------


def test_training_twice_gives_the_same_metrics_and_keeps_the_champion(
    tracking: MlflowResource, planted: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """(No secret reaching MLflow, from the environment, URLs, label parameters or run tags, is
    test_model_assets.py's test_no_secret_reaches_mlflow_the_logs_or_the_artifacts, on a server.)"""
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
    # every fold's scores as steps 0..3 of fold_* metrics, the values of the report's folds table
    for metric in ("roc_auc", "log_loss", "brier_skill", "trades"):
        history = sorted(client.get_metric_history(run.info.run_id, f"fold_{metric}"), key=lambda m: m.step)
        assert [m.step for m in history] == [0, 1, 2, 3], metric
        assert [m.value for m in history] == pytest.approx(first.folds[metric].tolist()), metric
    logged = {item.path for item in client.list_artifacts(run.info.run_id, "plots")}
    assert logged == {
        f"plots/{n}"
        for n in ("feature_importance.png", "calibration_curve.png", "roc_curve.png", "cumulative_return.png")
    }
    # the registered model's MLmodel: a signature (features in, probability out) and an input example
    from mlflow.artifacts import download_artifacts
    from mlflow.models import get_model_info

    info = get_model_info(f"models:/{name}/1")
    assert info.signature is not None
    assert info.signature.inputs.input_names() == feature_columns(BASE)
    [output] = info.signature.outputs.inputs  # P(take profit) of each row
    assert str(output.type) == "float64" and output.shape == (-1,)
    assert info.saved_input_example_info is not None
    folder = Path(download_artifacts(f"models:/{name}/1"))
    example = json.loads((folder / info.saved_input_example_info["artifact_path"]).read_text())
    assert example["columns"] == feature_columns(BASE) and len(example["data"]) == 5
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


def test_min_labels_below_what_the_folds_need_is_a_clear_skip(
    tracking: MlflowResource, planted: pd.DataFrame
):
    """min_labels 1 lets seven labels through, too few for four test folds: a skip saying so."""
    report = train(tracking, planted.head(7), min_labels=1)
    assert (report.promotion, report.version, report.folds) == ("skipped", None, None)
    assert report.reason == (
        "not trained: 7 closed labels with features cannot make 4 walk-forward test folds of 50% of "
        "them (min_labels 1 is too low)"
    )
    assert tracking.client().search_registered_models() == []


def test_class_balance_fails_outside_its_bounds():
    """The class_balance check on an out-of-sample take-profit rate of 1 %: fails at the default
    bounds (2 %..98 %), passes when they are widened."""
    from crypto_assets.models.assets import BALANCE_CHECK, CheckSettings, _checks
    from crypto_assets.models.fit_and_register import TrainingReport

    report = TrainingReport(
        "dca", labels=2000, usable=2000, promotion="refused",
        folds=pd.DataFrame({"fold": [0, 1], "rows": [500, 500], "base_rate": [0.01, 0.01]}),
        overall={"roc_auc": 0.6, "base_rate": 0.01, "log_loss": 0.05, "log_loss_naive": 0.06},
    )  # fmt: skip
    [strict] = [r for r in _checks(report, CheckSettings()) if r.check_name == BALANCE_CHECK]
    assert not strict.passed and strict.description == "take-profit rate 1.00% out of sample (bounds 2%..98%)"
    [wide] = [
        r for r in _checks(report, CheckSettings(min_positive_rate=0.005)) if r.check_name == BALANCE_CHECK
    ]
    assert wide.passed


def test_the_run_config_is_generated_from_the_training_settings():
    """ModelConfig has one field per field of TrainingSettings (ModelParams' flattened into it) and
    CheckSettings, with their defaults and docs; a value set for each comes back in settings()."""
    from dataclasses import fields

    from crypto_assets.models.assets import CheckSettings, ModelConfig
    from crypto_assets.models.training import ModelParams

    training = [f for f in fields(TrainingSettings) if f.name != "model"]
    sources = [*training, *fields(ModelParams), *fields(CheckSettings)]
    config = ModelConfig.model_fields
    assert list(config) == [
        "n_folds", "test_fraction", "min_labels", "promotion_margin", "min_comparison_rows", "threshold",
        "features", "max_iter", "learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization",
        "threads", "auc_floor", "min_positive_rate",
    ]  # fmt: skip
    assert set(config) == {f.name for f in sources}
    for f in sources:
        assert (config[f.name].default, config[f.name].description) == (f.default, f.metadata["doc"]), f.name
        assert f.metadata["doc"], f.name
    values = {
        "n_folds": 3, "test_fraction": 0.4, "min_labels": 10, "promotion_margin": 0.01,
        "min_comparison_rows": 5, "threshold": 0.3, "features": ["rsi_14", "ret_4"], "max_iter": 7,
        "learning_rate": 0.1, "max_leaf_nodes": 8, "min_samples_leaf": 9, "l2_regularization": 0.5,
        "threads": 2, "auc_floor": 0.6, "min_positive_rate": 0.1,
    }  # fmt: skip
    assert set(values) == set(config) and all(values[k] != config[k].default for k in values)
    chosen = ModelConfig(**values)
    assert chosen.settings() == TrainingSettings(
        n_folds=3, test_fraction=0.4, min_labels=10, promotion_margin=0.01, min_comparison_rows=5,
        threshold=0.3, features=("rsi_14", "ret_4"), threads=2,
        model=ModelParams(
            max_iter=7, learning_rate=0.1, max_leaf_nodes=8, min_samples_leaf=9, l2_regularization=0.5
        ),
    )  # fmt: skip
    assert chosen.checks() == CheckSettings(auc_floor=0.6, min_positive_rate=0.1)
    assert (
        ModelConfig().settings() == TrainingSettings()
        and ModelConfig(features=[]).settings().features is None
    )


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
        AssetCheckSeverity,
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
        # each model trained once, one with a champion (signals wait for that), then new features
        for key in ("dca_model", "swing_model", "channel_model"):
            recorded_run(instance, key, {"has_champion": key == "dca_model"})
        recorded_run(instance, "features", {"indicators_valid": True}, AssetCheckSeverity.ERROR)
        second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    requested = {r.key.to_user_string() for r in second.results if r.true_subset.size}
    assert "strategy_signals" in requested
    assert not requested & {"dca_model", "swing_model", "channel_model"}, "models retrain on a cadence"
    targeted = signals_sensor.asset_selection.resolve(defs.resolve_asset_graph())
    assert {key.to_user_string() for key in targeted} == {"strategy_signals"}
