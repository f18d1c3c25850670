"""Train one strategy's classifier: walk-forward out-of-sample scores, then the final fit on every row.

The model is scikit-learn's HistGradientBoostingClassifier in a Pipeline. Its early stopping is
off: above 10,000 rows it would hold out a *random* validation split, i.e. future rows, a leak.
Everything is seeded, so the same data gives the same model and the same scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from crypto_assets.models.evaluation import scores
from crypto_assets.models.validation import Fold
from crypto_assets.run_config import setting

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

SEED = 0
#: OpenMP threads for fitting and predicting. One: on this project's 2-core machine, shared by the
#: Dagster daemon, the webserver and other runs, two OpenMP threads spin-waiting for each other made
#: a 42,000-row fit take 20-30 s instead of 1.7 s, and scoring 2,000 rows 10x slower; the models
#: are the same either way (per-feature histograms, no thread-dependent sums).
THREADS = 1


@contextmanager
def limited_threads(threads: int = THREADS) -> Iterator[None]:
    """Fit and predict with at most `threads` OpenMP threads (scikit-learn's gradient boosting)."""
    import sklearn.ensemble  # noqa: F401  loads OpenMP first: a limit only applies to loaded libraries
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="openmp"):
        yield


@dataclass(frozen=True)
class ModelParams:
    """HistGradientBoostingClassifier's parameters (early stopping is always off)."""

    max_iter: int = setting(150, "Boosting iterations.")
    learning_rate: float = setting(0.05, "Shrinkage of each iteration's trees.")
    max_leaf_nodes: int = setting(31, "Leaves per tree at most.")
    min_samples_leaf: int = setting(200, "Training rows per leaf at least.")
    l2_regularization: float = setting(1.0, "L2 penalty on the leaf values.")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_pipeline(params: ModelParams) -> Pipeline:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    classifier = HistGradientBoostingClassifier(**params.as_dict(), early_stopping=False, random_state=SEED)
    return Pipeline([("classifier", classifier)])


@dataclass
class WalkForward:
    """Out-of-sample results of every fold; the latest fold's model is kept for the champion gate."""

    folds: pd.DataFrame  # one row per fold: fold, train_rows, train_from, test_from, test_to, scores
    overall: dict[str, float]  # scores of all out-of-sample predictions together
    predictions: pd.DataFrame  # per test row: position, fold, probability, taken, naive
    latest_model: Pipeline  # fitted on the latest fold's training rows, never an older fold's
    latest_fold: Fold


def walk_forward(
    x: pd.DataFrame,
    y: np.ndarray,
    returns: np.ndarray,
    entry_ts: pd.Series,
    folds: list[Fold],
    params: ModelParams,
    threshold: float | None = None,
) -> WalkForward:
    """Fit on each fold's training rows, predict its test rows. A trade is taken when the probability
    exceeds `threshold`, by default the fold's training base rate (the model rates it better than an
    average entry of the past). ValueError when the latest fold's training rows do not hold both
    outcomes (fit_and_register checks that first and skips with the reason)."""
    import numpy as np
    import pandas as pd

    latest = folds[-1]
    if len(np.unique(y[latest.train])) < 2:
        raise ValueError(
            f"the latest fold (fold {latest.number}) has {len(latest.train)} training rows, not rows "
            "of both outcomes: nothing to train the model the champion gate compares"
        )
    rows, parts = [], []
    latest_model = None
    for fold in folds:
        y_train = y[fold.train]
        base_rate = float(y_train.mean()) if len(y_train) else float("nan")
        cut = base_rate if threshold is None else threshold
        if len(fold.train) == 0 or len(np.unique(y_train)) < 2:
            # an older fold without both outcomes: scored as the naive forecast (its base rate)
            probability = np.full(len(fold.test), base_rate if len(y_train) else 0.5)
        else:
            model = make_pipeline(params).fit(_without_empty_columns(x.iloc[fold.train]), y_train)
            probability = model.predict_proba(x.iloc[fold.test])[:, 1]
            if fold is latest:
                latest_model = model
        taken = probability > cut
        naive = np.full(len(fold.test), base_rate)
        fold_scores = scores(y[fold.test], probability, returns[fold.test], taken=taken, naive=naive)
        rows.append(
            {
                "fold": fold.number,
                "train_rows": len(fold.train),
                "train_base_rate": base_rate,
                "threshold": cut,
                "test_from": entry_ts.iloc[fold.test[0]],
                "test_to": entry_ts.iloc[fold.test[-1]],
                **fold_scores,
            }
        )
        parts.append(
            pd.DataFrame(
                {
                    "position": fold.test,
                    "fold": fold.number,
                    "probability": probability,
                    "taken": taken,
                    "naive": naive,
                }
            )  # fmt: skip
        )
    predictions = pd.concat(parts, ignore_index=True)
    positions = predictions["position"].to_numpy()
    overall = scores(
        y[positions],
        predictions["probability"].to_numpy(),
        returns[positions],
        taken=predictions["taken"].to_numpy(),
        naive=predictions["naive"].to_numpy(),
    )
    assert latest_model is not None  # checked above: the latest fold has both outcomes
    return WalkForward(pd.DataFrame(rows), overall, predictions, latest_model, latest)


def fit_final(x: pd.DataFrame, y: np.ndarray, params: ModelParams) -> Pipeline:
    """The model that is registered: the same pipeline fitted on every labelled row."""
    return make_pipeline(params).fit(_without_empty_columns(x), y)


def _without_empty_columns(x: pd.DataFrame) -> pd.DataFrame:
    """Training rows with every all-missing column set to 0 (e.g. a coarse timeframe with no settled
    bucket yet). A constant column gets no split, exactly like no data; scikit-learn 1.9's binning
    raises on a column with no value at all."""
    empty = x.columns[x.isna().all()]
    return x.assign(**{name: 0.0 for name in empty}) if len(empty) else x
