"""The PNGs logged with each model run, for a person comparing models in MLflow.

Every plot is drawn from out-of-sample predictions only: feature importance (permutation, on the
latest test fold, by the model trained before it), calibration, ROC, and the cumulative return of
the trades the model takes against taking every entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

IMPORTANCE_ROWS = 2000  # rows of the latest fold scored for permutation importance (evenly spaced)
IMPORTANCE_REPEATS = 3  # shuffles per feature
TOP_FEATURES = 20
CURVE_POINTS = 2000  # points drawn of a cumulative-return curve


def draw_all(
    folder: Path,
    *,
    strategy: str,
    latest_model: Any,
    latest_x: pd.DataFrame,
    latest_y: np.ndarray,
    y: np.ndarray,
    probability: np.ndarray,
    taken: np.ndarray,
    returns: np.ndarray,
    entry_ts: pd.Series,
) -> list[Path]:
    """Write the four PNGs into `folder` and return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [
        _importance(folder, plt, strategy, latest_model, latest_x, latest_y),
        _calibration(folder, plt, strategy, y, probability),
        _roc(folder, plt, strategy, y, probability),
        _cumulative_return(folder, plt, strategy, taken, returns, entry_ts),
    ]
    plt.close("all")
    return paths


def _save(figure, folder: Path, name: str) -> Path:
    path = folder / name
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def _importance(folder, plt, strategy, model, x, y) -> Path:
    import numpy as np

    mean, std = permutation_importance(model, x, y)
    order = np.argsort(mean)[::-1][:TOP_FEATURES][::-1]
    figure, axis = plt.subplots(figsize=(7, 6))
    axis.barh([x.columns[i] for i in order], mean[order], xerr=std[order])
    axis.set_xlabel("log-loss increase when shuffled (latest test fold)")
    axis.set_title(f"{strategy}: permutation importance, out of sample")
    return _save(figure, folder, "feature_importance.png")


def permutation_importance(
    model: Any, x: pd.DataFrame, y: np.ndarray, repeats: int = IMPORTANCE_REPEATS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation, per column of `x`, of the log-loss increase when that column is
    shuffled, on IMPORTANCE_ROWS evenly spaced rows. What sklearn.inspection.permutation_importance
    computes, but every shuffled copy is scored in one predict_proba call: a gradient-boosting
    model's prediction costs a pass over its trees per call, so 2 x 36 calls of 2,000 rows cost
    seconds where one call of 144,000 rows costs a fraction of one."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import log_loss

    sample = np.linspace(0, len(x) - 1, min(len(x), IMPORTANCE_ROWS)).astype(int)
    rows, labels = x.iloc[sample].reset_index(drop=True), np.asarray(y)[sample]
    rng = np.random.default_rng(seed)
    copies = []
    for column in rows.columns:
        for _ in range(repeats):
            shuffled = rows.copy()
            shuffled[column] = rows[column].to_numpy()[rng.permutation(len(rows))]
            copies.append(shuffled)
    scored = model.predict_proba(pd.concat([rows, *copies], ignore_index=True))[:, 1]
    blocks = np.clip(scored, 1e-6, 1 - 1e-6).reshape(len(copies) + 1, len(rows))
    baseline = log_loss(labels, blocks[0], labels=[0, 1])
    losses = np.array([log_loss(labels, block, labels=[0, 1]) for block in blocks[1:]])
    increase = (losses - baseline).reshape(len(rows.columns), repeats)
    return increase.mean(axis=1), increase.std(axis=1)


def _calibration(folder, plt, strategy, y, probability) -> Path:
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y, probability, n_bins=10, strategy="quantile")
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axis.plot(predicted, observed, marker="o", label="model (out of sample)")
    axis.set_xlabel("predicted probability of take profit")
    axis.set_ylabel("observed frequency")
    axis.set_title(f"{strategy}: calibration")
    axis.legend()
    return _save(figure, folder, "calibration_curve.png")


def _roc(folder, plt, strategy, y, probability) -> Path:
    from sklearn.metrics import roc_auc_score, roc_curve

    false_positive, true_positive, _ = roc_curve(y, probability)
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="no skill")
    axis.plot(false_positive, true_positive, label=f"AUC {roc_auc_score(y, probability):.3f}")
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.set_title(f"{strategy}: ROC, out of sample")
    axis.legend()
    return _save(figure, folder, "roc_curve.png")


def _cumulative_return(folder, plt, strategy, taken, returns, entry_ts) -> Path:
    import numpy as np

    order = np.argsort(entry_ts.to_numpy(), kind="stable")
    every = np.cumsum(returns[order])
    model = np.cumsum(np.where(taken[order], returns[order], 0.0))
    # the sums over every entry, drawn at CURVE_POINTS of them: the same curve at 800 px, without
    # matplotlib converting 100,000+ timestamps
    shown = np.unique(np.linspace(0, len(order) - 1, min(len(order), CURVE_POINTS)).astype(int))
    when = entry_ts.to_numpy()[order][shown]
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.plot(when, every[shown], label="every entry")
    axis.plot(when, model[shown], label="entries the model takes")
    axis.set_ylabel("cumulative return (sum of per-trade returns)")
    axis.set_title(f"{strategy}: out-of-sample trades")
    axis.legend()
    figure.autofmt_xdate()
    return _save(figure, folder, "cumulative_return.png")
