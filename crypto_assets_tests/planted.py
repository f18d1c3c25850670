"""Labelled entries whose outcome depends on known features, for testing models against the truth.

Bars are random walks; features are the real ones (`compute_features`); each entry's chance of a
take profit is a logistic function of z-scored `dist_sma_48` (the strong signal) and `volume_z_48`
(the weak one), so a model that uses them must beat one that does not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crypto_assets.features.indicators import compute_features
from crypto_assets.labels.strategies import LABEL_COLUMNS
from crypto_assets.market import Timeframe
from crypto_assets.models.dataset import attach_coarse, feature_columns

BASE = Timeframe.parse("15m")
T0 = pd.Timestamp("2025-01-01", tz="UTC")
STRONG, WEAK = "dist_sma_48", "volume_z_48"
HORIZON_BARS = 48


def random_bars(symbols: list[str], n_bars: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for symbol in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n_bars)))
        spread = np.abs(rng.normal(0, 0.003, n_bars))
        frame = pd.DataFrame(
            {
                "exchange": "synthetic", "symbol": symbol, "timeframe": BASE.name,
                "ts": T0 + pd.to_timedelta(np.arange(n_bars) * BASE.seconds, unit="s"),
                "open": close * (1 + rng.normal(0, 0.001, n_bars)), "high": close * (1 + spread),
                "low": close * (1 - spread), "close": close, "volume": rng.gamma(2.0, 10.0, n_bars),
            }
        )  # fmt: skip
        frame["high"] = frame[["open", "high", "close"]].max(axis=1)
        frame["low"] = frame[["open", "low", "close"]].min(axis=1)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def planted_labels(
    features: pd.DataFrame,
    *,
    strategy: str,
    seed: int,
    strong: float = 2.5,
    weak: float = 0.8,
    every: int = 3,
) -> pd.DataFrame:
    """LABEL_COLUMNS rows for every `every`-th settled bar, outcome drawn from the planted odds."""
    rng = np.random.default_rng(seed)
    rows = features[~features["is_warmup"]].iloc[::every].reset_index(drop=True)

    def z(values: pd.Series) -> np.ndarray:
        v = values.astype("float64")
        return ((v - v.mean()) / v.std()).fillna(0).to_numpy()

    odds = strong * z(rows[STRONG]) + weak * z(rows[WEAK])
    label = (rng.random(len(rows)) < 1 / (1 + np.exp(-odds))).astype(np.int16)
    bars_to_exit = rng.integers(1, HORIZON_BARS + 1, len(rows))
    entry_price = np.full(len(rows), 100.0)
    return pd.DataFrame(
        {
            "strategy": strategy, "exchange": rows["exchange"], "symbol": rows["symbol"],
            "timeframe": rows["timeframe"], "entry_ts": rows["ts"], "entry_price": entry_price,
            "take_profit_price": entry_price * 1.03, "stop_loss_price": entry_price * 0.98,
            "time_limit_ts": rows["ts"] + HORIZON_BARS * BASE.delta,
            "exit_ts": rows["ts"] + pd.to_timedelta(bars_to_exit * BASE.seconds, unit="s"),
            "outcome": np.where(label == 1, "take_profit", "stop_loss"), "label": label,
            "bars_to_exit": bars_to_exit.astype(np.int32),
            "realized_return": np.where(label == 1, 0.03, -0.02),
        }
    )[LABEL_COLUMNS]  # fmt: skip


def training_set(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """What models.dataset.read_training_set returns for these tables (without a warehouse)."""
    base_columns = [c for c in feature_columns(BASE) if c in features.columns]
    joined = labels.merge(
        features[["exchange", "symbol", "ts", *base_columns]].rename(columns={"ts": "entry_ts"}),
        on=["exchange", "symbol", "entry_ts"],
        how="left",
    )
    joined["volume_anomaly"] = joined["volume_anomaly"].astype("int64")
    joined["has_features"] = True
    coarse = pd.DataFrame(columns=["exchange", "symbol", "timeframe", "ts"])
    frame = attach_coarse(joined, coarse, BASE)
    return frame.sort_values(["entry_ts", "exchange", "symbol"], kind="stable").reset_index(drop=True)


def panel(symbols: int = 4, n_bars: int = 3000, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(bars, features) of a random panel."""
    bars = random_bars([f"S{i}-USD" for i in range(symbols)], n_bars, seed)
    with np.errstate(all="ignore"):
        features = compute_features(bars)
    return bars, features
