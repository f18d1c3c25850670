from datetime import UTC, datetime

import numpy as np
import pandas as pd

from crypto_assets.ingestion.sources.synthetic import SyntheticSource
from crypto_assets.ingestion.validation import validate
from crypto_assets.market import Timeframe

TF = Timeframe.parse("15m")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def fetch(source: SyntheticSource, symbols, start: str, end: str) -> pd.DataFrame:
    return source.fetch(symbols, TF, pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")).frame


def test_a_bar_is_the_same_whichever_range_asked_for_it():
    source = SyntheticSource(now=NOW)
    wide = fetch(source, ["BTC-USD", "ETH-USD"], "2025-05-20", "2025-06-10")
    narrow = fetch(source, ["ETH-USD"], "2025-06-03 05:15", "2025-06-03 19:00")
    joined = narrow.merge(wide, on=["symbol", "ts"], suffixes=("", "_wide"))
    assert len(joined) == len(narrow) == 55
    for column in ["open", "high", "low", "close", "volume"]:
        assert (joined[column] == joined[f"{column}_wide"]).all()


def test_seed_and_symbol_change_the_market():
    a = fetch(SyntheticSource(seed=1, now=NOW), ["BTC-USD"], "2025-06-01", "2025-06-02")
    b = fetch(SyntheticSource(seed=2, now=NOW), ["BTC-USD"], "2025-06-01", "2025-06-02")
    c = fetch(SyntheticSource(seed=1, now=NOW), ["ETH-USD"], "2025-06-01", "2025-06-02")
    assert not np.allclose(a["close"], b["close"])
    assert not np.allclose(a["close"].pct_change().dropna(), c["close"].pct_change().dropna())


def test_every_bar_is_valid_continuous_and_closed():
    source = SyntheticSource(now=datetime(2025, 6, 3, 10, 7, tzinfo=UTC))
    frame = fetch(source, ["BTC-USD", "DOGE-USD"], "2025-05-01", "2025-06-04")
    checked = validate(frame, TF, ["BTC-USD", "DOGE-USD"], source._now)
    assert checked.quarantine.empty and checked.merged == 0
    assert frame["ts"].max() == pd.Timestamp("2025-06-03 09:45", tz="UTC")  # the 10:00 bar is forming
    for _, bars in frame.groupby("symbol"):
        assert np.allclose(bars["open"].to_numpy()[1:], bars["close"].to_numpy()[:-1])


def test_market_has_regimes_seasonality_and_volume_spikes():
    source = SyntheticSource(now=NOW)
    bars = fetch(source, ["BTC-USD"], "2025-01-01", "2025-07-01").set_index("ts")
    returns = np.log(bars["close"]).diff().dropna()
    daily_vol = returns.groupby(returns.index.date).std()
    assert daily_vol.quantile(0.9) > 1.8 * daily_vol.quantile(0.1), "calm and stormy regimes"
    daily_close = bars["close"].resample("1D").last()
    trend_30d = np.log(daily_close).diff(30).abs()
    assert trend_30d.max() > 0.15, "there are trends"
    volume_by_hour = bars["volume"].groupby(bars.index.hour).median()
    assert volume_by_hour[15] > 2 * volume_by_hour[3], "busy afternoons, quiet nights (UTC)"
    ratio = bars["volume"] / bars["volume"].rolling(96, center=True).median()
    assert 0.002 < (ratio > 3).mean() < 0.03, "occasional volume spikes"
    assert 40_000 < bars["close"].iloc[0] < 80_000, "BTC trades near a familiar price"
