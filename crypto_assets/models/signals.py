"""strategy_signals: the newest closed bar of every symbol, scored by each strategy's champion.

The champion is looked up by alias in the MLflow registry at every run, so a promotion changes the
scores without a code change. A score is a trade only when the strategy's entry rule fires on that
bar (the rule and its parameters are the ones the champion's labels were made with) and the
probability exceeds the champion's threshold.
"""

import json
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from crypto_assets.automation.conditions import rebuild_once_a_check_passes
from crypto_assets.labels.assets import RULES
from crypto_assets.labels.strategies import ChannelParams, DcaParams, SwingParams
from crypto_assets.market import Timeframe
from crypto_assets.models.assets import champion_check_keys, model_key
from crypto_assets.models.tracking import CHAMPION, MlflowResource
from crypto_assets.names import MODELS_GROUP, WAREHOUSE_POOL
from crypto_assets.prerequisites import require_tables
from crypto_assets.resources import WarehouseResource

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection

SIGNALS_TABLE = "strategy_signals"
SIGNAL_COLUMNS = [
    "strategy", "exchange", "symbol", "timeframe", "ts", "probability", "threshold", "model_version",
    "entry_signal", "take_trade", "scored_at",
]  # fmt: skip
SIGNALS_DDL = f"""
CREATE TABLE IF NOT EXISTS {SIGNALS_TABLE} (
    strategy VARCHAR NOT NULL,
    exchange VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    timeframe VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,  -- the scored bar (UTC open time); the entry would be at its close
    probability DOUBLE PRECISION NOT NULL,  -- champion's P(take profit)
    threshold DOUBLE PRECISION NOT NULL,  -- the champion trades above this probability
    model_version INTEGER NOT NULL,  -- registered version of crypto_assets.<strategy>
    entry_signal BOOLEAN NOT NULL,  -- the strategy's entry rule fires on this bar
    take_trade BOOLEAN NOT NULL,  -- entry_signal and probability > threshold
    scored_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (strategy, exchange, symbol, timeframe, ts)
)
"""
CHAMPIONS_CHECK = "every_strategy_has_champion"
#: how the asset fails when no strategy has a champion (the CLI reports it as a result, not an error)
NO_CHAMPION = "no strategy has a champion model yet"
#: ADX (Wilder's recursive smoothing) is computed on this many of its periods of bars before the
#: scored one: it then agrees with the labeller's, computed on the whole history, to about 1e-10
#: (ADX runs 0..100; measured on random walks: 10 periods 2e-2, 20 periods 1e-6, 30 periods 1e-10)
ADX_WARMUP_PERIODS = 30


def build_signals_asset(base: Timeframe) -> AssetsDefinition:
    """strategy_signals: the newest closed `base` bar of every symbol, scored by the champions."""

    @asset(
        name=SIGNALS_TABLE,
        group_name=MODELS_GROUP,
        deps=[AssetKey("raw_ohlc"), AssetKey("features"), *(model_key(s) for s in RULES)],
        pool=WAREHOUSE_POOL,
        kinds={"python", "sql", "mlflow"},
        automation_condition=rebuild_once_a_check_passes(champion_check_keys()),
        check_specs=[
            AssetCheckSpec(
                CHAMPIONS_CHECK,
                asset=SIGNALS_TABLE,
                description="Every strategy has a champion model to score with.",
            )
        ],
        description=(
            "The newest closed base bar of every symbol scored by each strategy's `champion` model "
            "(loaded by alias from the MLflow registry): probability of take profit, the model "
            "version, whether the strategy's entry rule fires on that bar, and whether it is a trade "
            "(rule fires and probability above the champion's threshold). Key (strategy, exchange, "
            "symbol, timeframe, ts); a rerun replaces the same rows. Strategies without a champion are "
            "named by the check. The automation waits until a model's has_champion check passes; a "
            "run launched with no champion at all fails, saying so."
        ),
    )
    def strategy_signals(
        context: AssetExecutionContext,
        warehouse: WarehouseResource,
        mlflow: MlflowResource,
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        champions = {s: mlflow.version_by_alias(s, CHAMPION) for s in RULES}
        missing = sorted(s for s, version in champions.items() if version is None)
        if len(missing) == len(champions):
            raise Failure(
                description=f"{NO_CHAMPION}: materialize dca_model, swing_model "
                "and channel_model; a model becomes champion only when it shows an edge out of sample"
            )
        with warehouse.open() as db:
            require_tables(db, "raw_ohlc", "features")
            with db.begin() as connection:
                rows = score_newest(connection, base, champions, mlflow)
                write_signals(connection, rows)
                stored = int(connection.exec_driver_sql(f"SELECT count(*) FROM {SIGNALS_TABLE}").scalar_one())
        versions = {s: int(v.version) for s, v in champions.items() if v is not None}
        context.log.info(f"scored {len(rows)} (strategy, symbol) pairs with champions {versions}")
        yield MaterializeResult(
            metadata={
                "champion_versions": MetadataValue.json(versions),
                "strategies_without_champion": ", ".join(missing) or "none",
                "signals": len(rows),
                "entry_signals": int(rows["entry_signal"].sum()) if len(rows) else 0,
                "trades": int(rows["take_trade"].sum()) if len(rows) else 0,
                "newest_bar": str(rows["ts"].max()) if len(rows) else "",
                "dagster/row_count": stored,
            }
        )
        yield AssetCheckResult(
            check_name=CHAMPIONS_CHECK,
            passed=not missing,
            severity=AssetCheckSeverity.WARN,
            description="every strategy scored"
            if not missing
            else f"no champion yet for {', '.join(missing)}: not scored (see each model's promotion_reason)",
        )

    return strategy_signals


def score_newest(
    connection: "Connection", base: Timeframe, champions: dict, tracking: MlflowResource
) -> "pd.DataFrame":
    """One row per (strategy with a champion, series) for the newest bar that has features."""
    import pandas as pd

    from crypto_assets.models.dataset import read_newest_entries
    from crypto_assets.models.fit_and_register import STRATEGY_PARAMS_TAG, THRESHOLD_TAG
    from crypto_assets.models.training import limited_threads

    newest = read_newest_entries(connection, base)
    if newest.empty:
        return pd.DataFrame(columns=SIGNAL_COLUMNS)
    # each champion's entry rule with the parameters its labels were made with
    rules = {
        strategy: rule_params(strategy, json.loads(version.tags.get(STRATEGY_PARAMS_TAG, "{}")))
        for strategy, version in champions.items()
        if version is not None
    }
    bars = _recent_bars(connection, base, newest, max(map(rule_bars, rules.values()), default=1))
    scored_at = pd.Timestamp(datetime.now(UTC))
    parts = []
    for strategy, version in champions.items():
        if version is None:
            continue
        model = tracking.load_version(strategy, version.version)
        columns = list(model.feature_names_in_)
        with limited_threads():
            probability = model.predict_proba(newest[columns].astype("float32"))[:, 1]
        threshold = float(version.tags.get(THRESHOLD_TAG, "0.5"))
        fires = entry_rule_fires(strategy, rules[strategy], bars, newest)
        parts.append(
            pd.DataFrame(
                {
                    "strategy": strategy,
                    "exchange": newest["exchange"].to_numpy(),
                    "symbol": newest["symbol"].to_numpy(),
                    "timeframe": base.name,
                    "ts": newest["entry_ts"].to_numpy(),
                    "probability": probability,
                    "threshold": threshold,
                    "model_version": int(version.version),
                    "entry_signal": fires,
                    "take_trade": fires & (probability > threshold),
                    "scored_at": scored_at,
                }
            )  # fmt: skip
        )
    return (
        pd.concat(parts, ignore_index=True)[SIGNAL_COLUMNS] if parts else pd.DataFrame(columns=SIGNAL_COLUMNS)
    )


def rule_params(strategy: str, recorded: dict) -> Any:
    """The strategy's parameter dataclass from the parameters recorded with the champion (defaults for
    the ones not recorded; each of its field's type: a window length is an int)."""
    params_class = RULES[strategy].params
    return params_class(
        **{
            f.name: type(f.default)(recorded[f.name])
            for f in fields(params_class)
            if recorded.get(f.name) is not None
        }
    )


def rule_bars(params: Any) -> int:
    """Bars up to and including a bar that the entry rule of `params` needs to decide on that bar as
    the labeller does on the whole history: its rolling windows, and ADX's warm-up."""
    match params:
        case DcaParams():  # the highest high of the last lookback_bars bars, this one included
            return params.lookback_bars
        case SwingParams():  # the previous bars' highest high and median volume
            return max(params.lookback_bars, params.volume_lookback_bars) + 1
        case ChannelParams():  # the channel, and ADX's recursive smoothing
            return max(params.lookback_bars, ADX_WARMUP_PERIODS * params.adx_period)
    raise TypeError(f"no entry rule for {type(params).__name__}")


def entry_rule_fires(strategy: str, params: Any, bars: "pd.DataFrame", newest: "pd.DataFrame"):
    """Per row of `newest`: does the strategy's entry rule (`params`, see rule_params) fire on that
    bar, given the bars before it?"""
    import numpy as np

    from crypto_assets.labels.strategies import STRATEGIES

    fires = np.zeros(len(newest), dtype=bool)
    grouped = {key: rows for key, rows in bars.groupby(["exchange", "symbol"], sort=False)}
    for i, (exchange, symbol, ts) in enumerate(
        newest[["exchange", "symbol", "entry_ts"]].itertuples(index=False)
    ):
        rows = grouped.get((exchange, symbol))
        if rows is None:
            continue
        rows = rows[rows["ts"] <= ts]
        if rows.empty or rows["ts"].iloc[-1] != ts:
            continue
        arrays = [
            np.ascontiguousarray(rows[c].to_numpy(dtype=np.float64))
            for c in ("high", "low", "close", "volume")
        ]
        entries = STRATEGIES[strategy](*arrays, params).entries
        fires[i] = len(entries) > 0 and entries[-1] == len(rows) - 1
    return fires


def _recent_bars(
    connection: "Connection", base: Timeframe, newest: "pd.DataFrame", bars_needed: int
) -> "pd.DataFrame":
    """The last `bars_needed` base bars (or more) of each series of `newest` up to its newest entry
    bar, all of them when it has fewer. One read of the time those bars span without a gap; then
    each series short of bars in it (a gap, or a young series) reads its last `bars_needed` bars."""
    import pandas as pd

    from crypto_assets.warehouse.frames import read_frame

    names = ["exchange", "symbol", "ts", "high", "low", "close", "volume"]
    columns = ", ".join(names)
    since = newest["entry_ts"].min() - (bars_needed - 1) * base.delta
    frame = read_frame(
        connection,
        f"SELECT {columns} FROM raw_ohlc WHERE timeframe = :base AND ts >= :since "
        "ORDER BY exchange, symbol, ts",
        {"base": base.name, "since": since.to_pydatetime()},
        timestamps=["ts"],
    )
    ends = newest[["exchange", "symbol", "entry_ts"]]
    if len(frame):
        joined = frame.merge(ends, on=["exchange", "symbol"])
        have = joined[joined["ts"] <= joined["entry_ts"]].groupby(["exchange", "symbol"]).size()
    else:
        have = pd.Series(dtype="int64")
    short = [
        (exchange, symbol, ts)
        for exchange, symbol, ts in ends.itertuples(index=False)
        if have.get((exchange, symbol), 0) < bars_needed
    ]
    if not short:
        return frame
    parts = []
    if len(frame):
        keys = pd.MultiIndex.from_frame(frame[["exchange", "symbol"]])
        parts.append(frame[~keys.isin([(exchange, symbol) for exchange, symbol, _ in short])])
    for exchange, symbol, ts in short:
        parts.append(
            read_frame(
                connection,
                f"SELECT {columns} FROM raw_ohlc WHERE timeframe = :base AND exchange = :exchange "
                f"AND symbol = :symbol AND ts <= :ts ORDER BY ts DESC LIMIT {int(bars_needed)}",
                {"base": base.name, "exchange": exchange, "symbol": symbol, "ts": ts.to_pydatetime()},
                timestamps=["ts"],
            ).iloc[::-1]
        )
    found = [part for part in parts if len(part)]
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=names)


def write_signals(connection: "Connection", rows: "pd.DataFrame") -> None:
    """In the caller's transaction: replace the rows with the same keys (idempotent reruns)."""
    from crypto_assets.warehouse.bulk import drop_staged, stage_frame

    connection.exec_driver_sql(SIGNALS_DDL)
    if rows.empty:
        return
    stage_frame(connection, rows, "staged_signals", SIGNALS_TABLE)
    try:
        connection.exec_driver_sql(
            f"""
            DELETE FROM {SIGNALS_TABLE} USING staged_signals s
            WHERE {SIGNALS_TABLE}.strategy = s.strategy AND {SIGNALS_TABLE}.exchange = s.exchange
              AND {SIGNALS_TABLE}.symbol = s.symbol AND {SIGNALS_TABLE}.timeframe = s.timeframe
              AND {SIGNALS_TABLE}.ts = s.ts
            """
        )
        connection.exec_driver_sql(
            f"INSERT INTO {SIGNALS_TABLE} SELECT {', '.join(SIGNAL_COLUMNS)} FROM staged_signals"
        )
    finally:
        drop_staged(connection, "staged_signals")
