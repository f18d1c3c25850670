"""Models benchmark at seed scale: the whole graph from raw candles to signals, then each strategy
model's phases on the warehouse it built.

    python benchmarks/models.py [--symbols 90] [--days 180] [--warehouse-url URL]
                                [--postgres-url ADMIN_URL] [--graph-only]

1. Whole graph: `crypto-assets backfill --downstream` in a fresh CRYPTO_ASSETS_HOME (embedded DuckDB
   and SQLite stores, synthetic market): raw_ohlc and its checks, dbt models, features, labels, the
   three models and strategy_signals, as recorded Dagster runs. Wall time and peak RSS of that
   process, and each step's time from the Dagster instance (target: <= 180 s and 4 GB).
   With --warehouse-url (and --dagster-home of the run that built it) an existing warehouse is used.
   The three model steps together are the models' verdict (target <= 60 s, walk-forward included).
   With --postgres-url the warehouse is a throw-away database on that server instead (created and
   dropped here; the Dagster instance and MLflow stay embedded): the same backfill on PostgreSQL.
2. Per strategy, on that warehouse, with a fresh MLflow store: closed labels, reading them, the
   walk-forward (folds + fits), the final fit, plots, MLflow logging (target <= 3 s per model);
   against the same run's baseline, one plain fit of the same classifier on all rows. Then scoring
   the newest bar of every symbol end to end as strategy_signals does it: the champion looked up
   and loaded from the registry, the features and recent bars read, the entry rule, predict
   (target < 1 s). Imports and the tracking store's first migration are reported apart.

Targets are printed, not asserted. The machine is shared and noisy: compare ratios, read the date.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

if not __package__:  # run as `python benchmarks/models.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (  # noqa: E402
    bench_symbols,
    machine_facts,
    print_facts,
    print_table,
    report_row,
)
from crypto_assets.labels.assets import RULES  # noqa: E402
from crypto_assets.market import Timeframe  # noqa: E402
from crypto_assets.warehouse import Warehouse  # noqa: E402
from crypto_assets_tests.pg import scratch_database  # noqa: E402

BASE = Timeframe.parse("15m")
NO_CHAMPION = "no strategy has a champion model yet"  # the CLI's message when signals cannot run


def whole_graph(home: Path, symbols: int, days: int, warehouse_url: str | None = None) -> tuple[str, Path]:
    """Run the CLI backfill of the whole graph (on `warehouse_url`, default a DuckDB file in `home`);
    return the warehouse URL and DAGSTER_HOME it used."""
    end = datetime.now(UTC).date() - timedelta(days=1)
    start = end - timedelta(days=days - 1)
    env = {
        **os.environ,
        "CRYPTO_ASSETS_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "CRYPTO_ASSETS_SYMBOLS": ",".join(bench_symbols(symbols)),
        "CRYPTO_ASSETS_START": start.isoformat(),
        "CRYPTO_ASSETS_SOURCE": "synthetic",
    }
    for name in ("CRYPTO_ASSETS_WAREHOUSE_URL", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    if warehouse_url:
        env["CRYPTO_ASSETS_WAREHOUSE_URL"] = warehouse_url
    engine = "PostgreSQL" if warehouse_url else "DuckDB"
    script = Path(sys.executable).with_name("crypto-assets")
    command = [str(script), "backfill", "--start", start.isoformat(), "--end", end.isoformat(),
               "--downstream", "--days-per-run", str(days)]  # fmt: skip
    print(f"\n1. whole graph on {engine}: {symbols} symbols x {days} days of {BASE}, {' '.join(command[1:])}")
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    no_champion = NO_CHAMPION in result.stderr + result.stdout
    if result.returncode and not no_champion:
        print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
        raise SystemExit(f"the backfill failed (exit {result.returncode})")
    if no_champion:  # a small history may give no model an edge: the graph ran up to the signals
        print(f"note: {NO_CHAMPION}: the models trained without an edge, so nothing was scored")
    steps = step_times(home / "dagster")
    rows = [[step, f"{seconds:.1f}"] for step, seconds in steps]
    rows.append(["whole process (wall)", f"{wall:.1f}"])
    print_table(rows, ["step", "seconds"])
    models_s = sum(seconds for step, seconds in steps if step.endswith("_model"))
    print(f"wall {wall:.0f} s (target <= 180 s, stretch 90 s): {'met' if wall <= 180 else 'MISSED'}")
    print(f"the three model steps {models_s:.1f} s (target <= 60 s): {'met' if models_s <= 60 else 'MISSED'}")
    print(_load())
    print(f"peak RSS {peak_mb:,.0f} MB (target <= 4,096 MB): {'met' if peak_mb <= 4096 else 'MISSED'}")
    scale = f"{engine}, {symbols} x {days} d"
    report_row(f"whole graph wall time ({scale})", f"{wall:.0f} s", "<= 180 s (stretch 90 s)", wall <= 180)
    report_row(f"whole graph peak RSS ({scale})", f"{peak_mb:,.0f} MB", "<= 4,096 MB", peak_mb <= 4096)
    if no_champion:
        report_row(f"whole graph ({scale})", "ran up to the models; no champion, so no signals", "", False)
    in_steps = sum(seconds for _, seconds in steps)
    report_row(
        f"whole graph, seconds per step, slowest first ({scale})",
        ", ".join(f"{step} {seconds:.1f}" for step, seconds in sorted(steps, key=lambda step: -step[1]))
        + f"; all {len(steps)} steps {in_steps:.0f} s of {wall:.0f} s",
    )
    return warehouse_url or f"duckdb:///{home / 'warehouse.duckdb'}", home / "dagster"


def step_times(dagster_home: Path) -> list[tuple[str, float]]:
    """(step, seconds) of every step of the runs recorded in the instance, in start order."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    from dagster import DagsterInstance

    with DagsterInstance.get() as instance:
        stats = [s for run in instance.get_runs() for s in instance.get_run_step_stats(run.run_id)]
    stats.sort(key=lambda s: s.start_time or 0)
    return [(s.step_key, (s.end_time or 0) - (s.start_time or 0)) for s in stats]


def per_strategy(warehouse_url: str) -> None:
    with Warehouse(warehouse_url) as warehouse:
        _per_strategy(warehouse)


def _per_strategy(warehouse: Warehouse) -> None:
    import numpy as np

    import_s, _ = _timed(_import_model_libraries)
    from crypto_assets.models.dataset import feature_columns, read_training_set
    from crypto_assets.models.fit_and_register import TrainingSettings, fit_and_register
    from crypto_assets.models.signals import score_newest
    from crypto_assets.models.tracking import CHALLENGER, CHAMPION, MlflowResource
    from crypto_assets.models.training import limited_threads, make_pipeline

    print(f"\n2. per strategy, on that warehouse with a fresh MLflow store ({_load()} before)")
    print(f"imports once per process (scikit-learn, MLflow, matplotlib): {import_s:.1f} s, not in the rows")
    store = Path(tempfile.mkdtemp(prefix="crypto_assets_bench_mlflow_"))
    tracking = MlflowResource(tracking_uri=f"sqlite:///{store / 'mlflow.db'}", artifact_root=str(store / "a"))
    migrate_s, _ = _timed(lambda: tracking.client().search_experiments())
    print(f"first use of the SQLite tracking store (its migration): {migrate_s:.1f} s, not in the rows")
    settings = TrainingSettings()
    rows, verdicts, total_ours, total_plain = [], [], 0.0, 0.0
    for strategy in RULES:
        with warehouse.read() as connection:
            read_s, frame = _timed(
                lambda s=strategy: read_training_set(connection, f"strategy_{s}_labels", BASE)
            )
        usable = frame[frame["has_features"]]
        x, y = usable[feature_columns(BASE)].astype("float32"), usable["label"].to_numpy()
        with limited_threads():  # the threads the models train with
            plain_s, _ = _timed(lambda x=x, y=y: make_pipeline(settings.model).fit(x, y))
        train_s, report = _timed(
            lambda s=strategy, f=frame: fit_and_register(
                f, strategy=s, base=BASE, strategy_params={}, settings=settings, tracking=tracking, tags={}
            )
        )
        phases = report.seconds
        ours = read_s + train_s
        total_ours, total_plain = total_ours + ours, total_plain + plain_s
        logging_s = phases.get("mlflow_logging", float("nan"))
        verdicts.append(
            f"{strategy}: MLflow logging {logging_s:.1f} s (target <= 3 s): "
            + ("met" if logging_s <= 3 else "MISSED")
            if "mlflow_logging" in phases
            else f"{strategy}: not trained, nothing logged ({report.reason})"
        )
        rows.append([
            strategy, f"{len(frame):,}", f"{read_s:.1f}", f"{phases.get('walk_forward', np.nan):.1f}",
            f"{phases.get('final_fit', np.nan):.1f}", f"{phases.get('plots', np.nan):.1f}",
            f"{logging_s:.1f}", f"{ours:.1f}", f"{plain_s:.1f}", f"{ours / plain_s:.1f}x",
            f"{report.overall.get('roc_auc', np.nan):.3f}", report.promotion,
        ])  # fmt: skip
    print_table(
        rows,
        ["strategy", "labels", "read s", "walk-forward s", "final fit s", "plots s", "mlflow log s",
         "total s", "one plain fit s", "total / plain fit", "oos AUC", "gate"],
    )  # fmt: skip
    for line in verdicts:
        print(line)
    verdict = "met" if total_ours <= 60 else "MISSED"
    print(f"three models {total_ours:.1f} s (target <= 60 s): {verdict}")
    print(f"  = {total_ours / total_plain:.1f}x three plain fits of the same classifier; {_load()} after")
    report_row(
        "the three models (read + train + log)",
        f"{total_ours:.1f} s, {total_ours / total_plain:.1f}x three plain fits",
        "<= 60 s",
        total_ours <= 60,
    )

    # scoring, end to end as strategy_signals does it: the champion looked up and loaded from the
    # registry, the newest bar's features and the recent bars read, the entry rule, predict
    def score(strategies):
        # the challenger where there is no champion: the same work, timed
        champions = {
            s: tracking.version_by_alias(s, CHAMPION) or tracking.version_by_alias(s, CHALLENGER)
            for s in strategies
        }
        with warehouse.read() as connection:
            return score_newest(connection, BASE, champions, tracking)

    score_rows = []
    for strategy in RULES:
        score_s, scored = _timed(lambda s=strategy: score([s]))
        score_rows.append([strategy, f"{score_s * 1000:.0f}", f"{len(scored)}"])
    all_s, scored = _timed(lambda: score(list(RULES)))
    score_rows.append(["all (what the asset does)", f"{all_s * 1000:.0f}", f"{len(scored)}"])
    print_table(score_rows, ["scoring with the champion (else challenger)", "ms end to end", "rows scored"])
    symbols = scored["symbol"].nunique() if len(scored) else 0
    if symbols:
        print(
            f"scoring the newest bars of {symbols} symbols with every champion: {all_s:.2f} s "
            f"(target < 1 s): {'met' if all_s < 1 else 'MISSED'}"
        )
        report_row(f"scoring the newest bars ({symbols} symbols, every champion)", f"{all_s:.2f} s", "< 1 s",
                   all_s < 1)  # fmt: skip
    else:
        print("scoring: no registered model to score with")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process {peak_mb:,.0f} MB")


def _import_model_libraries() -> None:
    import matplotlib.pyplot  # noqa: F401
    import mlflow.sklearn  # noqa: F401
    import sklearn.ensemble  # noqa: F401


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=90)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument(
        "--warehouse-url", help="benchmark the models on this warehouse instead of building one"
    )
    parser.add_argument(
        "--postgres-url", help="build the graph in a throw-away database on this server (CREATE DATABASE)"
    )
    parser.add_argument("--graph-only", action="store_true", help="phase 1 only (no per-strategy phase)")
    args = parser.parse_args()
    print_facts("crypto_assets models benchmark", machine_facts())
    if args.warehouse_url:
        per_strategy(args.warehouse_url)
        return 0
    home = Path(tempfile.mkdtemp(prefix="crypto_assets_bench_graph_"))
    try:
        if args.postgres_url:
            with scratch_database(args.postgres_url, "crypto_assets_bench") as url:
                whole_graph(home, args.symbols, args.days, url)
                if not args.graph_only:
                    per_strategy(url)
            return 0
        warehouse_url, _ = whole_graph(home, args.symbols, args.days)
        if not args.graph_only:
            per_strategy(warehouse_url)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
