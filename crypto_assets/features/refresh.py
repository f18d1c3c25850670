"""One refresh of the features table: plan, read, compute, replace, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crypto_assets.features.indicators import SERIES, compute_features
from crypto_assets.features.store import (
    bar_sources,
    ensure_features_table,
    plan_incremental,
    replace_features,
    series_in,
)
from crypto_assets.market import Timeframe
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.candles import read_bars

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class RefreshReport:
    full: bool
    written: dict[str, int] = field(default_factory=dict)  # timeframe -> rows written
    read: dict[str, int] = field(default_factory=dict)  # timeframe -> bars read
    stored: int = 0


def refresh_features(warehouse: Warehouse, base: Timeframe, *, full: bool = False) -> RefreshReport:
    """Recompute the features of every series of every timeframe present.

    Incremental (default): per series, read bars from the stored row OVERLAP_BARS before the
    newest stored one, compute, and write only bars newer than the newest stored one; a series
    with fewer stored rows (or none) is recomputed whole. `full`: recompute everything.
    """
    import pandas as pd

    report = RefreshReport(full=full)
    with warehouse.begin() as connection:
        ensure_features_table(connection)
        plan = None if full else plan_incremental(connection).anchors
        outputs = []
        for timeframe, table in bar_sources(connection, base).items():
            anchors = None if plan is None else plan[plan["timeframe"] == timeframe]
            since = None
            if anchors is not None and len(anchors) and anchors["anchor_ts"].notna().all():
                anchored = set(anchors[SERIES].itertuples(index=False, name=None))
                if series_in(connection, timeframe, table) <= anchored:
                    since = anchors["anchor_ts"].min()
            bars = read_bars(connection, timeframe, table, since)
            report.read[timeframe] = len(bars)
            if anchors is not None and len(anchors) and len(bars):
                features = _compute_after(bars, anchors)
            else:
                features = compute_features(bars)
            report.written[timeframe] = len(features)
            outputs.append(features)
        frame = pd.concat(outputs, ignore_index=True) if outputs else pd.DataFrame()
        replace_features(connection, frame, everything=full)
        report.stored = int(connection.exec_driver_sql("SELECT count(*) FROM features").scalar_one())
    return report


def _compute_after(bars: pd.DataFrame, anchors: pd.DataFrame) -> pd.DataFrame:
    """Features of the bars newer than each series' newest stored row, computed from its anchor
    (bar numbers continue from the anchor's); series without an anchor are computed whole."""
    bars = bars.merge(anchors, on=SERIES, how="left")
    bars = bars[bars["anchor_ts"].isna() | (bars["ts"] >= bars["anchor_ts"])]
    anchored = anchors.dropna(subset=["anchor_ts"])
    offsets = {
        (exchange, symbol, timeframe): int(number)
        for exchange, symbol, timeframe, number in anchored[[*SERIES, "anchor_bar_number"]].itertuples(
            index=False
        )
    }
    features = compute_features(bars, offsets)
    stored = features[SERIES].merge(anchors[[*SERIES, "newest_ts", "anchor_ts"]], on=SERIES, how="left")
    newer = features["ts"].reset_index(drop=True) > stored["newest_ts"]
    fresh = (stored["anchor_ts"].isna() | newer).to_numpy()
    return features[fresh]
