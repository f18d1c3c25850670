"""One training of a strategy model, end to end: read, validate walk-forward, fit, log, register, gate."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crypto_assets.market import Timeframe
from crypto_assets.models.dataset import feature_columns
from crypto_assets.models.gate import Decision, decide, edge
from crypto_assets.models.tracking import CHALLENGER, CHAMPION, MlflowResource, log_training, set_alias
from crypto_assets.models.training import (
    THREADS,
    ModelParams,
    fit_final,
    limited_threads,
    walk_forward,
)
from crypto_assets.models.validation import TooFewRows, walk_forward_folds
from crypto_assets.run_config import setting

if TYPE_CHECKING:
    import pandas as pd

#: model version tags the gate and the signals read back
TRAINED_UNTIL_TAG = "trained_until"  # end of the newest label window trained on (ISO, UTC)
STRATEGY_PARAMS_TAG = "strategy_params"  # JSON of the label parameters: the entry rule
THRESHOLD_TAG = "threshold"  # probability above which an entry is taken
DECISION_TAG = "gate_decision"


@dataclass(frozen=True)
class TrainingSettings:
    """How a strategy model is trained, validated and gated; with ModelParams, the model assets' run
    config (models.assets.ModelConfig is generated from both)."""

    n_folds: int = setting(4, "Walk-forward test folds.")
    test_fraction: float = setting(0.5, "Share of the labels (the newest) the test folds cover.")
    min_labels: int = setting(1000, "Fewer closed labels than this: skip, register nothing.")
    promotion_margin: float = setting(
        0.002, "Log loss by which a new version must beat the champion on the same labels."
    )
    min_comparison_rows: int = setting(
        200, "Labels newer than the champion's training data needed to compare the two."
    )
    threshold: float | None = setting(
        None, "Probability above which an entry is taken; default: the training base rate."
    )
    features: tuple[str, ...] | None = setting(None, "Feature columns to use; default: all.")
    model: ModelParams = field(default_factory=ModelParams)
    threads: int = setting(
        THREADS,
        "OpenMP threads for fitting: 1 on a shared 2-core machine (two threads waiting for each other "
        "there made fits several times slower); more on dedicated cores. Same model.",
    )


@dataclass
class TrainingReport:
    strategy: str
    labels: int  # closed labels read
    usable: int  # of them with features for their entry bar
    promotion: str = "skipped"  # promoted, refused or skipped
    reason: str = ""
    version: int | None = None
    champion_version: int | None = None
    run_link: str | None = None
    folds: pd.DataFrame | None = None
    overall: dict[str, float] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase

    @contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = round(time.perf_counter() - started, 3)


def fit_and_register(
    training_set: pd.DataFrame,
    *,
    strategy: str,
    base: Timeframe,
    strategy_params: dict[str, Any],
    settings: TrainingSettings,
    tracking: MlflowResource,
    tags: dict[str, str],
) -> TrainingReport:
    """Train `strategy` on `training_set` (models.dataset.read_training_set), log the run to MLflow,
    register the model and apply the champion gate. Too few labels: a skip, nothing registered.
    Fits use `settings.threads` OpenMP threads."""
    with limited_threads(settings.threads):
        return _train_log_and_gate(training_set, strategy, base, strategy_params, settings, tracking, tags)


def _train_log_and_gate(
    training_set: pd.DataFrame,
    strategy: str,
    base: Timeframe,
    strategy_params: dict[str, Any],
    settings: TrainingSettings,
    tracking: MlflowResource,
    tags: dict[str, str],
) -> TrainingReport:
    import numpy as np

    usable = training_set[training_set["has_features"]].reset_index(drop=True)
    report = TrainingReport(strategy, labels=len(training_set), usable=len(usable))
    if len(training_set) > len(usable):
        report.reason = f"{len(training_set) - len(usable)} label(s) without features for their entry bar; "
    if len(usable) < settings.min_labels:
        return _skip(
            report, tracking, f"{len(usable)} closed labels with features, minimum {settings.min_labels}"
        )
    columns = list(settings.features or feature_columns(base))
    unknown = sorted(set(columns) - set(usable.columns))
    if unknown:
        raise ValueError(f"{strategy}: unknown feature column(s) {', '.join(unknown)}")
    report.features = columns
    x = usable[columns].astype("float32")
    y = usable["label"].to_numpy(dtype=np.int64)
    returns = usable["realized_return"].to_numpy(dtype=np.float64)
    horizon = (usable["time_limit_ts"] - usable["entry_ts"]).max().to_pytimedelta()
    try:
        folds = walk_forward_folds(
            usable["entry_ts"], usable["exit_ts"], n_folds=settings.n_folds,
            test_fraction=settings.test_fraction, bar=base.delta, embargo=horizon,
        )  # fmt: skip
    except TooFewRows:  # a min_labels set below what the folds need
        return _skip(
            report,
            tracking,
            f"{len(usable)} closed labels with features cannot make {settings.n_folds} walk-forward test "
            f"folds of {settings.test_fraction:.0%} of them (min_labels {settings.min_labels} is too low)",
        )
    empty = [f.number for f in folds if len(f.test) == 0 or len(f.train) == 0]
    if empty:
        return _skip(report, tracking, f"fold(s) {empty} have no training or test rows")
    latest_outcomes = np.unique(y[folds[-1].train])
    if len(latest_outcomes) < 2:
        outcome = "a take profit" if latest_outcomes[0] == 1 else "no take profit"
        return _skip(
            report,
            tracking,
            f"the latest fold's {len(folds[-1].train)} training rows all have one outcome ({outcome})",
        )
    with report.timing("walk_forward"):
        result = walk_forward(x, y, returns, usable["entry_ts"], folds, settings.model, settings.threshold)
    report.folds, report.overall = result.folds, result.overall
    with report.timing("final_fit"):
        final = fit_final(x, y, settings.model)
    threshold = float(y.mean()) if settings.threshold is None else settings.threshold
    trained_until = (usable["exit_ts"].max() + base.delta).isoformat()

    with report.timing("champion_comparison"):
        champion = tracking.version_by_alias(strategy, CHAMPION)
        comparison = _compare_with_champion(tracking, strategy, champion, usable, x, result)
    positions = result.predictions["position"].to_numpy()
    with tempfile.TemporaryDirectory(prefix="crypto_assets_plots_") as folder:
        from crypto_assets.models.plots import draw_all

        latest = result.latest_fold
        with report.timing("plots"):
            draw_all(
                Path(folder), strategy=strategy, latest_model=result.latest_model,
                latest_x=x.iloc[latest.test], latest_y=y[latest.test], y=y[positions],
                probability=result.predictions["probability"].to_numpy(),
                taken=result.predictions["taken"].to_numpy(), returns=returns[positions],
                entry_ts=usable["entry_ts"].iloc[positions].reset_index(drop=True),
            )  # fmt: skip
        with report.timing("mlflow_logging"):
            experiment_id, run_id, version = log_training(
                tracking,
                strategy=strategy,
                run_name=f"{strategy} {tags.get('dagster_run_id', '')[:8]}".strip(),
                tags={**tags, "strategy": strategy, "base_timeframe": base.name},
                params=_params(strategy_params, settings, columns, usable, base, threshold),
                metrics={f"oos_{k}": v for k, v in result.overall.items()},
                fold_metrics=[
                    {k: float(v) for k, v in row.items() if isinstance(v, int | float)}
                    for row in result.folds.to_dict("records")
                ],
                plots=Path(folder),
                model=final,
                input_example=x.head(5),
                version_tags={
                    TRAINED_UNTIL_TAG: trained_until,
                    STRATEGY_PARAMS_TAG: json.dumps(strategy_params, sort_keys=True),
                    THRESHOLD_TAG: repr(threshold),
                },
            )
    has_edge, edge_reason = edge(result.overall)
    decision = decide(
        new_version=version,
        has_edge=has_edge,
        edge_reason=edge_reason,
        champion_version=int(champion.version) if champion else None,
        margin=settings.promotion_margin,
        min_comparison_rows=settings.min_comparison_rows,
        **comparison,
    )
    _apply(tracking, strategy, version, decision)
    report.version, report.promotion, report.reason = (
        version, "promoted" if decision.promote else "refused", report.reason + decision.reason
    )  # fmt: skip
    report.champion_version = version if decision.promote else (int(champion.version) if champion else None)
    report.run_link = tracking.run_link(experiment_id, run_id)
    return report


def _skip(report: TrainingReport, tracking: MlflowResource, why: str) -> TrainingReport:
    """Nothing trained or registered; the strategy keeps whatever champion it had."""
    report.reason += f"not trained: {why}"
    champion = tracking.version_by_alias(report.strategy, CHAMPION)
    report.champion_version = int(champion.version) if champion else None
    return report


def _compare_with_champion(tracking, strategy, champion, usable, x, result) -> dict[str, Any]:
    """Log losses of the new walk-forward's latest-fold model and of the champion on the latest fold's
    entries that are newer than everything the champion was trained on."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import log_loss

    empty = {"comparison_rows": 0, "new_log_loss": float("nan"), "champion_log_loss": float("nan")}
    if champion is None:
        return empty
    trained_until = pd.Timestamp(champion.tags.get(TRAINED_UNTIL_TAG, "1970-01-01T00:00:00+00:00"))
    latest = result.latest_fold.test
    rows = latest[(usable["entry_ts"].iloc[latest] >= trained_until).to_numpy()]
    if len(rows) == 0:
        return empty
    y = usable["label"].to_numpy()[rows]
    predictions = result.predictions.set_index("position")["probability"]
    new_p = predictions.loc[rows].to_numpy()
    champion_model = tracking.load_version(strategy, champion.version)
    champion_columns = list(getattr(champion_model, "feature_names_in_", x.columns))
    champion_p = champion_model.predict_proba(usable.iloc[rows][champion_columns].astype("float32"))[:, 1]
    clip = (1e-6, 1 - 1e-6)
    return {
        "comparison_rows": len(rows),
        "new_log_loss": float(log_loss(y, np.clip(new_p, *clip), labels=[0, 1])),
        "champion_log_loss": float(log_loss(y, np.clip(champion_p, *clip), labels=[0, 1])),
    }


def _apply(tracking: MlflowResource, strategy: str, version: int, decision: Decision) -> None:
    tracking.client().set_model_version_tag(
        f"crypto_assets.{strategy}", str(version), DECISION_TAG, decision.reason[:5000]
    )
    set_alias(tracking, strategy, CHAMPION if decision.promote else CHALLENGER, version)


def _params(strategy_params, settings, columns, usable, base, threshold) -> dict[str, Any]:
    return {
        **{f"strategy.{k}": v for k, v in strategy_params.items()},
        **{f"model.{k}": v for k, v in settings.model.as_dict().items()},
        "model.class": "HistGradientBoostingClassifier",
        "validation.n_folds": settings.n_folds,
        "validation.test_fraction": settings.test_fraction,
        "validation.purge": "label windows overlapping the test fold",
        "validation.embargo": str((usable["time_limit_ts"] - usable["entry_ts"]).max()),
        "gate.promotion_margin": settings.promotion_margin,
        "gate.min_comparison_rows": settings.min_comparison_rows,
        "threshold": threshold,
        "base_timeframe": base.name,
        "features": ",".join(columns),
        "feature_count": len(columns),
        "train_rows": len(usable),
        "train_from": usable["entry_ts"].min().isoformat(),
        "train_to": usable["entry_ts"].max().isoformat(),
        "symbols": int(usable["symbol"].nunique()),
    }
