"""What each `crypto-assets` subcommand does; imported only when the command runs."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

import pandas as pd
from dagster import AssetSelection, DagsterInstance, Definitions, ExecuteInProcessResult
from tqdm import tqdm

from crypto_assets.cli.instance import ensure_dagster_home
from crypto_assets.cli.runs import FollowUp, RangeRunOutcome, materialize_days
from crypto_assets.errors import UserError
from crypto_assets.ingestion.sources import make_source
from crypto_assets.market import Timeframe, parse_symbols
from crypto_assets.resources import mlflow_resource
from crypto_assets.settings import Settings, default_warehouse_url, load_settings
from crypto_assets.warehouse import Warehouse

if TYPE_CHECKING:
    from crypto_assets.models.tracking import MlflowResource

UI_HINT = "open the Dagster UI with `make dev` (http://127.0.0.1:3000)"


def _today() -> date:
    return datetime.now(UTC).date()


def _check_range(settings: Settings, start: date, end: date) -> None:
    if start < settings.start:
        raise UserError(
            f"--start {start} is before the first partition {settings.start}: "
            "set CRYPTO_ASSETS_START earlier or start later"
        )
    if end > _today():
        raise UserError(f"--end {end} is in the future: the last partition is today, {_today()}")


def _preflight(settings: Settings) -> None:
    """Fail before any run starts when the warehouse or the source is misconfigured."""
    with Warehouse(settings.warehouse_url) as warehouse, warehouse.read():
        pass
    make_source(settings.source).preflight()


def _build_defs(settings: Settings) -> Definitions:
    """The code location for `settings`; its resources keep values from the environment as EnvVars."""
    from crypto_assets.code_location import build_defs

    return build_defs(settings)


def _tracking(defs: Definitions) -> MlflowResource:
    """The code location's MLflow resource, its EnvVar values resolved."""
    return defs.resources["mlflow"].process_config_and_initialize()


def _load(
    settings: Settings,
    defs: Definitions,
    *,
    start: date,
    end: date,
    symbols: list[str] | None,
    downstream: bool,
    days_per_run: int,
) -> RangeRunOutcome:
    ensure_dagster_home()
    _check_range(settings, start, end)
    _preflight(settings)
    raw = AssetSelection.assets("raw_ohlc")
    total_days = (end - start).days + 1
    with (
        DagsterInstance.get() as instance,
        tqdm(total=total_days, unit="day", desc="raw_ohlc", file=sys.stderr, disable=None) as progress,
        # dbt echoes its log to stdout; it stays in dbt_project/target/base_<tf>/*/dbt.log
        contextlib.redirect_stdout(io.StringIO()),
    ):

        def on_chunk(first: date, last: date, result: ExecuteInProcessResult) -> None:
            progress.update((last - first).days + 1)
            progress.set_postfix_str(f"run {result.run_id[:8]} {'ok' if result.success else 'FAILED'}")

        return materialize_days(
            [*defs.assets, *defs.asset_checks],
            defs.resources,
            instance,
            start=start,
            end=end,
            selection=raw,
            symbols=symbols,
            days_per_run=days_per_run,
            then=_downstream(defs, raw) if downstream else (),
            on_chunk=on_chunk,
        )


def _downstream(defs: Definitions, raw: AssetSelection) -> list[FollowUp]:
    """What `--downstream` rebuilds after the candles: everything but the signals in one run, then
    the signals, which only a champion can score (none after a training without edge: an honest
    result the command reports, not a failed run)."""
    signals = AssetSelection.assets("strategy_signals")

    def no_champion() -> str | None:
        from crypto_assets.labels.assets import RULES
        from crypto_assets.models.signals import NO_CHAMPION
        from crypto_assets.models.tracking import CHAMPION

        tracking = _tracking(defs)
        if any(tracking.version_by_alias(strategy, CHAMPION) for strategy in RULES):
            return None
        return f"strategy_signals not scored: {NO_CHAMPION} (no model showed an edge out of sample)"

    return [FollowUp(raw.downstream() - raw - signals), FollowUp(signals, no_champion)]


def _report_failures(outcome: RangeRunOutcome) -> int:
    """Exit code for the runs' failures (a follow-up left out, like the signals without a
    champion, is reported by the command, not a failure)."""
    if outcome.user_errors:
        print(f"crypto-assets: error: {outcome.user_errors[0]}", file=sys.stderr)
        return 2
    if outcome.errors:
        for message in dict.fromkeys(outcome.errors):
            print(f"crypto-assets: run failed: {message}", file=sys.stderr)
        return 1
    return 0


def run_backfill(
    *,
    start: date,
    end: date,
    symbols: str | None,
    timeframe: str | None,
    downstream: bool,
    days_per_run: int,
) -> int:
    settings = load_settings()
    if timeframe and Timeframe.parse(timeframe) != settings.timeframe:
        if downstream:
            raise UserError(
                f"--downstream builds the models of CRYPTO_ASSETS_TIMEFRAME={settings.timeframe}, not "
                f"--timeframe {timeframe}: set CRYPTO_ASSETS_TIMEFRAME={timeframe} instead"
            )
        # the base timeframe shapes the definitions themselves, so they are built for this one
        settings = dataclasses.replace(settings, timeframe=Timeframe.parse(timeframe))
    chosen = parse_symbols(symbols) if symbols else None
    outcome = _load(
        settings,
        _build_defs(settings),
        start=start,
        end=end,
        symbols=chosen,
        downstream=downstream,
        days_per_run=days_per_run,
    )
    print(f"{len(outcome.run_ids)} run(s) recorded in {os.environ['DAGSTER_HOME']}; {UI_HINT}")
    for reason in outcome.not_run:
        print(reason)
    _print_checks(outcome)
    return _report_failures(outcome)


def run_demo(*, days: int) -> int:
    """The whole graph on the embedded default: DuckDB under CRYPTO_ASSETS_HOME, synthetic market."""
    settings = load_settings()
    if days < 1:
        raise UserError("--days must be at least 1")
    demo_settings = dataclasses.replace(
        settings, warehouse_url=default_warehouse_url(settings.home), source="synthetic"
    )
    end = _today()
    start = max(settings.start, end - timedelta(days=days - 1))
    print(f"crypto_assets demo: {len(settings.symbols)} symbols, {start}..{end}, synthetic market")
    print(f"warehouse {demo_settings.warehouse_url}")
    defs = _build_defs(demo_settings)
    outcome = _load(
        demo_settings, defs, start=start, end=end, symbols=None, downstream=True, days_per_run=days
    )
    with Warehouse(demo_settings.warehouse_url) as warehouse:
        rows = warehouse.query(
            "SELECT symbol, count(*) AS bars, min(ts) AS first_bar, max(ts) AS newest_bar FROM raw_ohlc "
            "WHERE exchange = 'synthetic' AND timeframe = :tf GROUP BY symbol ORDER BY symbol",
            {"tf": settings.timeframe.name},
        )
        quarantined = warehouse.query("SELECT count(*) AS n FROM ohlc_quarantine")["n"].iloc[0]
        print("\nraw_ohlc rows per symbol")
        print(rows.to_string(index=False))
        print(f"ohlc_quarantine rows: {quarantined}")
        _print_models(warehouse, settings.timeframe)
        _print_features_and_labels(warehouse)
    _print_checks(outcome)
    _print_strategy_models(_tracking(defs))
    print(f"\ndagster instance: {os.environ['DAGSTER_HOME']} ({len(outcome.run_ids)} run(s))")
    print(f"next: {UI_HINT}; `crypto-assets mlflow` to compare models; `crypto-assets status` for health")
    return _report_failures(outcome)


def _print_models(warehouse, base: Timeframe) -> None:
    from crypto_assets.names import WINDOW_MODELS, resampled_models
    from crypto_assets.transform.summary import model_summary

    tables = [*resampled_models(base).values(), *WINDOW_MODELS]  # the dbt models built for `base`
    print("\ndbt models (group transform): rows, and buckets missing base bars / still open")
    print(model_summary(warehouse, tables).to_string(index=False))


def _print_features_and_labels(warehouse) -> None:
    from crypto_assets.labels.assets import RULES
    from crypto_assets.labels.store import label_table

    features = warehouse.query(
        "SELECT timeframe, count(*) AS rows, count(*) FILTER (WHERE is_warmup) AS warm_up, "
        "count(*) FILTER (WHERE volume_anomaly) AS volume_anomalies FROM features GROUP BY timeframe"
    )
    print("\nfeatures: rows per timeframe (warm-up rows are marked, not filled)")
    print(features.sort_values("rows", ascending=False).to_string(index=False))
    labels = [
        warehouse.query(
            f"SELECT '{strategy}' AS strategy, count(*) AS closed_labels, "
            "count(*) FILTER (WHERE outcome = 'take_profit') AS take_profit, "
            "count(*) FILTER (WHERE outcome = 'stop_loss') AS stop_loss, "
            "count(*) FILTER (WHERE outcome = 'timeout') AS timeout, "
            f"avg(realized_return) AS mean_return FROM {label_table(strategy)}"
        )
        for strategy in RULES
    ]
    print("\nstrategy labels (triple barrier; open entries wait for a later run)")
    print(pd.concat(labels).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _print_strategy_models(tracking) -> None:
    """Per strategy: what the latest training found out of sample, and which version is champion."""
    from crypto_assets.labels.assets import RULES
    from crypto_assets.models.assets import model_key

    rows = []
    with DagsterInstance.get() as instance:
        for strategy in RULES:
            event = instance.get_latest_materialization_event(model_key(strategy))
            meta = {k: v.value for k, v in event.asset_materialization.metadata.items()} if event else {}
            rows.append(
                {
                    "strategy": strategy,
                    "labels": meta.get("labels", 0),
                    "base_rate": _pct(meta.get("oos_base_rate")),
                    "oos_auc": _num(meta.get("oos_auc")),
                    "win_rate_taken": _pct(meta.get("oos_win_rate_taken")),
                    "win_rate_all": _pct(meta.get("oos_win_rate_all")),
                    "version": meta.get("model_version", "-"),
                    "champion": f"v{meta['champion_version']}" if "champion_version" in meta else "none",
                    "why": meta.get("promotion_reason", "not trained"),
                }
            )
    table = pd.DataFrame(rows)
    print("\nstrategy models (out of sample, walk-forward; tracked in MLflow)")
    print(table.drop(columns="why").to_string(index=False))
    for row in rows:
        print(f"  {row['strategy']}: {row['why']}")
    if all(row["champion"] == "none" for row in rows):
        print("  no strategy has a champion: no model showed an edge out of sample, so no signals")
    print(f"mlflow: {tracking.describe()}; open it with `crypto-assets mlflow` (http://127.0.0.1:5000)")


def _pct(value) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "-"


def _num(value) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def _print_checks(outcome: RangeRunOutcome) -> None:
    if not outcome.checks:
        return
    print("\nasset checks")
    for check in outcome.checks:
        state = "passed" if check.passed else f"FAILED ({check.severity.value})"
        description = f": {check.description}" if check.description else ""
        print(f"  {check.asset_key.to_user_string()}.{check.check_name} {state}{description}")


def run_dev(dagster_args: Sequence[str] = ()) -> NoReturn:
    """`dagster dev` on this code location; `dagster_args` (e.g. --port 3001) go to it unchanged.

    SIGINT and SIGTERM are reset to their defaults first. A process started in the background by
    a non-interactive shell (`make dev &`, nohup, some supervisors) inherits SIGINT as ignored, and
    `dagster dev` maps SIGTERM to whatever SIGINT does: it would then ignore both, while its
    webserver and daemon wait for its shutdown message and its code servers for its heartbeat.
    """
    home = ensure_dagster_home()
    dagster = shutil.which("dagster") or os.path.join(os.path.dirname(sys.executable), "dagster")
    args = list(dagster_args)
    port = _option_value(args, "-p", "--port", "--dagit-port") or "3000"
    host = _option_value(args, "-h", "--host", "--dagit-host") or "127.0.0.1"
    print(f"DAGSTER_HOME={home}; UI at http://{host}:{port}", file=sys.stderr)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.execv(dagster, [dagster, "dev", "-m", "crypto_assets.definitions", *args])


def _option_value(args: Sequence[str], *names: str) -> str | None:
    """The value given to any of `names` (`--port 3001` or `--port=3001`), if any."""
    for position, arg in enumerate(args):
        name, equals, value = arg.partition("=")
        if name in names:
            if equals:
                return value
            return args[position + 1] if position + 1 < len(args) else None
    return None


def run_mlflow(*, host: str, port: int) -> int:
    """The MLflow UI on the configured tracking store and registry (`mlflow ui`)."""
    from crypto_assets.models.tracking import MlflowResource

    tracking = mlflow_resource(load_settings()).process_config_and_initialize()
    assert isinstance(tracking, MlflowResource)
    if tracking.uses_server:
        print(f"MLflow runs as a server here: open {tracking.describe()}")
        return 0
    mlflow = shutil.which("mlflow") or os.path.join(os.path.dirname(sys.executable), "mlflow")
    print(f"MLflow UI on {tracking.describe()} at http://{host}:{port}", file=sys.stderr)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    os.execve(mlflow, [mlflow, "ui", "--backend-store-uri", tracking.tracking_uri, "--host", host,
                       "--port", str(port)], env)  # fmt: skip
