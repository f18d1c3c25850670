"""What a model sees: the features of each entry bar, and coarser timeframes' features as of the entry.

An entry is taken at the close of its base bar, so a model may use that bar's features (computed from
bars <= it) and, of each coarser timeframe, only the newest bucket that has closed by then: the bucket
opening at floor(entry close, tf) - tf. A bucket that closes after the entry never leaks in (the
features table holds complete and closed buckets only; a missing one leaves NaN, which the model
handles). The symbol is not a feature.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crypto_assets.features.indicators import FLOAT_FEATURES
from crypto_assets.market import Timeframe
from crypto_assets.names import RESAMPLED_MODELS

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd
    from sqlalchemy.engine import Connection

BASE_FEATURES = [*FLOAT_FEATURES, "volume_anomaly", "hour_of_day", "day_of_week"]
#: features of each coarser timeframe joined as of the entry (prefixed with the timeframe: 1h_rsi_14)
COARSE_FEATURES = ["rsi_14", "dist_sma_48", "realized_vol_48", "adx_14", "donchian_pos_48", "ret_4"]
#: how many of the resampled timeframes just above the base a model sees (1h and 4h for a 15m base)
COARSE_LEVELS = 2
LABEL_FIELDS = ["exchange", "symbol", "entry_ts", "exit_ts", "time_limit_ts", "label", "realized_return"]


def coarse_timeframes(base: Timeframe) -> list[Timeframe]:
    """The COARSE_LEVELS resampled timeframes just coarser than `base` (whole multiples of it)."""
    coarser = [Timeframe.parse(name) for name in RESAMPLED_MODELS]
    usable = [tf for tf in coarser if tf.seconds > base.seconds and tf.seconds % base.seconds == 0]
    return usable[:COARSE_LEVELS]


def feature_columns(base: Timeframe) -> list[str]:
    """Every column a model of this base timeframe may use, in a fixed order."""
    coarse = [f"{tf.name}_{name}" for tf in coarse_timeframes(base) for name in COARSE_FEATURES]
    return [*BASE_FEATURES, *coarse]


def _base_feature_sql() -> str:
    # booleans as integers: PostgreSQL's CSV COPY writes t/f, which Arrow would read as text
    return ", ".join(
        f"CAST(f.{name} AS INTEGER) AS {name}" if name == "volume_anomaly" else f"f.{name}"
        for name in BASE_FEATURES
    )


def read_training_set(connection: Connection, label_table: str, base: Timeframe) -> pd.DataFrame:
    """Closed labels of `label_table` at the base timeframe with the features of their entry bar,
    sorted by entry time. `has_features` is false where the entry bar has no features row yet."""
    from crypto_assets.warehouse.frames import read_frame

    labels = read_frame(
        connection,
        f"""
        SELECT {", ".join(f"l.{c}" for c in LABEL_FIELDS)},
               CASE WHEN f.ts IS NULL THEN 0 ELSE 1 END AS has_features, {_base_feature_sql()}
        FROM {label_table} l
        LEFT JOIN features f
          ON f.exchange = l.exchange AND f.symbol = l.symbol AND f.timeframe = l.timeframe
         AND f.ts = l.entry_ts
        WHERE l.timeframe = :base
        """,
        {"base": base.name},
        timestamps=["entry_ts", "exit_ts", "time_limit_ts"],
    )
    if labels.empty:
        return _empty(base)
    frame = attach_coarse(labels, _read_coarse(connection, base), base)
    frame["has_features"] = frame["has_features"].astype(bool)
    return frame.sort_values(["entry_ts", "exchange", "symbol"], kind="stable").reset_index(drop=True)


def read_newest_entries(connection: Connection, base: Timeframe) -> pd.DataFrame:
    """The newest base bar of every series that has features, with its features: what signals score."""
    from crypto_assets.warehouse.frames import read_frame

    newest = read_frame(
        connection,
        f"""
        SELECT f.exchange, f.symbol, f.ts AS entry_ts, {_base_feature_sql()}
        FROM features f
        JOIN (SELECT exchange, symbol, max(ts) AS ts FROM features WHERE timeframe = :base
              GROUP BY exchange, symbol) n
          ON n.exchange = f.exchange AND n.symbol = f.symbol AND n.ts = f.ts
        WHERE f.timeframe = :base
        """,
        {"base": base.name},
        timestamps=["entry_ts"],
    )
    if newest.empty:
        return newest
    # only the buckets these entries can see: none opens before the oldest entry minus two buckets
    coarsest = max((tf.delta for tf in coarse_timeframes(base)), default=base.delta)
    since = newest["entry_ts"].min().to_pydatetime() - 2 * coarsest
    coarse = _read_coarse(connection, base, since=since)
    return attach_coarse(newest, coarse, base).sort_values(["exchange", "symbol"])


def _read_coarse(connection: Connection, base: Timeframe, since: datetime | None = None) -> pd.DataFrame:
    from crypto_assets.warehouse.frames import read_frame

    timeframes = [tf.name for tf in coarse_timeframes(base)]
    if not timeframes:
        return read_frame(connection, "SELECT exchange, symbol, timeframe, ts FROM features WHERE 1 = 0")
    names = ", ".join(f"'{name}'" for name in timeframes)  # parsed Timeframe names: [0-9]+[mhd]
    return read_frame(
        connection,
        f"SELECT exchange, symbol, timeframe, ts, {', '.join(COARSE_FEATURES)} FROM features "
        f"WHERE timeframe IN ({names})" + (" AND ts >= :since" if since is not None else ""),
        {"since": since} if since is not None else None,
        timestamps=["ts"],
    )


def attach_coarse(entries: pd.DataFrame, coarse: pd.DataFrame, base: Timeframe) -> pd.DataFrame:
    """`entries` (exchange, symbol, entry_ts, ...) plus `<tf>_<feature>` of the newest bucket of each
    coarser timeframe that closed by the entry bar's close: the one opening at floor(close, tf) - tf."""
    import pandas as pd

    frame = entries.reset_index(drop=True)
    close = pd.to_datetime(frame["entry_ts"], utc=True) + base.delta
    for tf in coarse_timeframes(base):
        prefixed = {name: f"{tf.name}_{name}" for name in COARSE_FEATURES}
        rows = coarse[coarse["timeframe"] == tf.name] if len(coarse) else coarse
        rows = rows.drop(columns=["timeframe"]).rename(columns={**prefixed, "ts": "_bucket"})
        if rows.empty:
            rows = pd.DataFrame(columns=["exchange", "symbol", "_bucket", *prefixed.values()])
        rows["_bucket"] = pd.to_datetime(rows["_bucket"], utc=True)
        frame["_bucket"] = close.dt.floor(f"{tf.seconds}s") - tf.delta
        frame = frame.merge(rows, on=["exchange", "symbol", "_bucket"], how="left").drop(columns="_bucket")
    return frame


def _empty(base: Timeframe) -> pd.DataFrame:
    import pandas as pd

    columns = [*LABEL_FIELDS, "has_features", *feature_columns(base)]
    return pd.DataFrame({column: pd.Series(dtype="float64") for column in columns})
