"""dca_model, swing_model, channel_model: one classifier per strategy, tracked and registered in MLflow.

Each materialization is one training: walk-forward out-of-sample scores, the final fit, one MLflow
run with its plots, a new registered version, and the champion gate's decision in the metadata.
"""

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from crypto_assets.automation.retraining import RETRAIN_WEEKLY
from crypto_assets.labels.assets import RULES
from crypto_assets.labels.store import label_table
from crypto_assets.market import Timeframe
from crypto_assets.models.fit_and_register import TrainingReport, TrainingSettings
from crypto_assets.models.tracking import MlflowResource
from crypto_assets.names import MODELS_GROUP, WAREHOUSE_POOL
from crypto_assets.prerequisites import require_tables
from crypto_assets.resources import WarehouseResource
from crypto_assets.run_config import config_class, setting, settings_from

AUC_CHECK = "oos_auc_above_floor"
FOLDS_CHECK = "no_empty_fold"
BALANCE_CHECK = "class_balance"
LOG_LOSS_CHECK = "beats_base_rate_log_loss"
#: passes while the strategy has a champion version; strategy_signals waits for one such pass
CHAMPION_CHECK = "has_champion"


def model_key(strategy: str) -> AssetKey:
    return AssetKey(f"{strategy}_model")


def champion_check_keys() -> list[AssetCheckKey]:
    """Each model's has_champion check (what the signals' automation waits for)."""
    return [AssetCheckKey(model_key(strategy), CHAMPION_CHECK) for strategy in RULES]


@dataclass(frozen=True)
class CheckSettings:
    """What the model's checks compare with (run config beside the training settings)."""

    auc_floor: float = setting(0.52, "The out-of-sample AUC check warns below this.")
    min_positive_rate: float = setting(0.02, "The class-balance check fails outside this..1-this.")


class _ModelConfigBase(Config):
    def settings(self) -> TrainingSettings:
        return settings_from(self, TrainingSettings)

    def checks(self) -> CheckSettings:
        return settings_from(self, CheckSettings)


#: the model assets' run config: every field of TrainingSettings (ModelParams flattened into it) and
#: CheckSettings, with the same names, defaults and docs
ModelConfig = config_class("ModelConfig", TrainingSettings, CheckSettings, base=_ModelConfigBase)


def build_model_asset(strategy: str, base: Timeframe) -> AssetsDefinition:
    """The model of `strategy`, trained on its labels of the `base` timeframe."""
    labels = AssetKey(label_table(strategy))
    key = model_key(strategy)
    specs = [
        AssetCheckSpec(
            AUC_CHECK, asset=key, description="Out-of-sample ROC AUC is above the configured floor."
        ),
        AssetCheckSpec(
            FOLDS_CHECK,
            asset=key,
            description="Every walk-forward fold has training and test rows, the test rows of both "
            "outcomes (WARN; a training that skipped fails it with its reason).",
        ),
        AssetCheckSpec(BALANCE_CHECK, asset=key, description="The take-profit rate is within bounds."),
        AssetCheckSpec(
            LOG_LOSS_CHECK,
            asset=key,
            description="Out-of-sample log loss beats the naive base-rate forecast.",
        ),
        AssetCheckSpec(
            CHAMPION_CHECK,
            asset=key,
            # blocking for the automation only: strategy_signals waits until one model's passes; its
            # results are WARN, and only an ERROR stops what is downstream in the same run
            blocking=True,
            description="The strategy has a champion version to score with (this training's or an "
            "earlier one). strategy_signals' automation waits until one model passes it (WARN: it "
            "never stops a run).",
        ),
    ]

    @asset(
        key=key,
        group_name=MODELS_GROUP,
        deps=[labels, AssetKey("features")],
        pool=WAREHOUSE_POOL,
        kinds={"scikitlearn", "mlflow"},
        automation_condition=RETRAIN_WEEKLY,
        check_specs=specs,
        description=(
            f"Classifier of {strategy} entries: P(take profit before stop loss or time limit) from the "
            "entry bar's features and coarser timeframes' features as of the entry. Walk-forward "
            "validation by entry time with purging (label windows overlapping a test fold) and an "
            "embargo of one label horizon; scores out of sample only. Logged to MLflow with plots and "
            f"registered as crypto_assets.{strategy}; the alias `champion` moves only when the new "
            "version shows an edge and beats the champion on the same out-of-sample labels."
        ),
    )
    def model(
        context: AssetExecutionContext,
        config: ModelConfig,
        warehouse: WarehouseResource,
        mlflow: MlflowResource,
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        from crypto_assets.models.dataset import read_training_set
        from crypto_assets.models.fit_and_register import fit_and_register

        with warehouse.open() as db:
            require_tables(db, label_table(strategy), "features")
            with db.read() as connection:
                training_set = read_training_set(connection, label_table(strategy), base)
        report = fit_and_register(
            training_set,
            strategy=strategy,
            base=base,
            strategy_params=_strategy_params(context, strategy, labels),
            settings=config.settings(),
            tracking=mlflow,
            tags={"dagster_run_id": context.run.run_id, "dagster_asset": key.to_user_string()},
        )
        context.log.info(f"{strategy}: {report.promotion}: {report.reason}")
        yield MaterializeResult(metadata=_metadata(report))
        yield from _checks(report, config.checks())

    return model


def build_model_assets(base: Timeframe) -> list[AssetsDefinition]:
    return [build_model_asset(strategy, base) for strategy in RULES]


def models_by_labels() -> dict[AssetKey, AssetKey]:
    """Each strategy's label table and the model trained on it."""
    return {AssetKey(label_table(strategy)): model_key(strategy) for strategy in RULES}


def _strategy_params(context: AssetExecutionContext, strategy: str, labels: AssetKey) -> dict:
    """The parameters the stored labels were made with (recorded by the label asset), else defaults.
    Only the strategy's own numeric parameters: they become MLflow params and the entry rule of the
    signals, so nothing else recorded beside them (a token, a URL) is carried on."""
    params = asdict(RULES[strategy].params())
    event = context.instance.get_latest_materialization_event(labels)
    recorded = (
        event.asset_materialization.metadata.get("params") if event and event.asset_materialization else None
    )
    if recorded is not None and isinstance(recorded.value, dict):
        for name, value in recorded.value.items():
            if name in params and isinstance(value, int | float) and not isinstance(value, bool):
                params[name] = value
    return params


def _metadata(report: TrainingReport) -> dict:
    overall = report.overall
    metadata: dict = {
        "promotion": report.promotion,
        "promotion_reason": report.reason,
        "labels": report.labels,
        "labels_used": report.usable if report.version is not None else 0,
    }
    if report.version is not None:
        metadata["model_version"] = report.version
    if report.champion_version is not None:
        metadata["champion_version"] = report.champion_version
    if report.run_link:
        metadata["mlflow_run"] = (
            MetadataValue.url(report.run_link) if report.run_link.startswith("http") else report.run_link
        )
    for name in ("roc_auc", "log_loss", "log_loss_naive", "brier", "brier_skill", "base_rate", "trades",
                 "win_rate_taken", "win_rate_all", "mean_return_taken", "mean_return_all"):  # fmt: skip
        if name in overall and math.isfinite(overall[name]):
            metadata[f"oos_{name.replace('roc_', '')}"] = float(overall[name])
    if report.folds is not None:
        table = report.folds.drop(columns=["log_loss_naive", "precision"], errors="ignore")
        metadata["folds"] = MetadataValue.md(table.to_markdown(index=False, floatfmt=".4f"))
    if report.features:
        metadata["feature_count"] = len(report.features)
    if report.seconds:
        metadata["seconds_per_phase"] = MetadataValue.json(report.seconds)
    return metadata


def _checks(report: TrainingReport, config: CheckSettings) -> Iterator[AssetCheckResult]:
    yield _champion_check(report)
    if report.folds is None:
        for name in (AUC_CHECK, FOLDS_CHECK, BALANCE_CHECK, LOG_LOSS_CHECK):
            yield AssetCheckResult(
                check_name=name, passed=False, severity=AssetCheckSeverity.WARN, description=report.reason
            )
        return
    overall, folds = report.overall, report.folds
    auc = overall["roc_auc"]
    yield AssetCheckResult(
        check_name=AUC_CHECK,
        passed=bool(auc > config.auc_floor),
        severity=AssetCheckSeverity.WARN,
        description=f"out-of-sample AUC {auc:.4f}, floor {config.auc_floor}",
        metadata={"oos_auc": float(auc)},
    )
    one_class = folds[folds["base_rate"].isin([0.0, 1.0]) | (folds["rows"] == 0)]["fold"].tolist()
    yield AssetCheckResult(
        check_name=FOLDS_CHECK,
        passed=not one_class,
        severity=AssetCheckSeverity.WARN,
        description="every fold has rows of both outcomes"
        if not one_class
        else f"fold(s) {one_class} are empty or hold one outcome only",
        metadata={"test_rows_per_fold": [int(v) for v in folds["rows"]]},
    )
    rate = overall["base_rate"]
    low, high = config.min_positive_rate, 1 - config.min_positive_rate
    yield AssetCheckResult(
        check_name=BALANCE_CHECK,
        passed=bool(low <= rate <= high),
        severity=AssetCheckSeverity.WARN,
        description=f"take-profit rate {rate:.2%} out of sample (bounds {low:.0%}..{high:.0%})",
    )
    model_ll, naive_ll = overall["log_loss"], overall["log_loss_naive"]
    yield AssetCheckResult(
        check_name=LOG_LOSS_CHECK,
        passed=bool(model_ll < naive_ll),
        severity=AssetCheckSeverity.WARN,
        description=f"log loss {model_ll:.4f} vs {naive_ll:.4f} forecasting the training base rate",
    )


def _champion_check(report: TrainingReport) -> AssetCheckResult:
    champion = report.champion_version
    return AssetCheckResult(
        check_name=CHAMPION_CHECK,
        passed=champion is not None,
        severity=AssetCheckSeverity.WARN,
        description=f"champion v{champion} ({report.promotion} this time)"
        if champion is not None
        else f"no champion: {report.reason}",
        metadata={"champion_version": champion} if champion is not None else {},
    )
