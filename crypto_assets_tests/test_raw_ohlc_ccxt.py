"""raw_ohlc from a ccxt exchange: a real local HTTP server speaking Binance's API, never the internet."""

from __future__ import annotations

from datetime import UTC, datetime

from crypto_assets.warehouse import Warehouse
from crypto_assets_tests.fake_exchange import FakeBinance
from crypto_assets_tests.helpers import materialize_raw, metadata

NOW = datetime(2025, 9, 24, 12, tzinfo=UTC)


def test_failing_symbol_is_named_while_the_others_are_stored(warehouse_url: str, warehouse: Warehouse):
    with FakeBinance(now=NOW, symbols=["BTC-USDT", "ETH-USDT", "FOO-USDT"]) as fake:
        fake.fault("FOOUSDT", always=True, status=503)
        fake.gap("ETHUSDT", datetime(2025, 9, 22, 6, tzinfo=UTC), datetime(2025, 9, 22, 8, tzinfo=UTC))
        result = materialize_raw(
            warehouse_url,
            first_day="2025-09-22",
            last_day="2025-09-23",
            source="ccxt:binance",
            symbols="BTC-USDT,ETH-USDT,FOO-USDT",
            ccxt_api_url=fake.url,
        )

    assert not result.success
    [failure] = result.get_step_failure_events()
    message = failure.step_failure_data.user_failure_data.description
    assert "FOO-USDT" in message and "BTC-USDT" not in message

    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "symbol_coverage")
    assert not check.passed
    assert check.metadata["lacking_symbols"].value == "ETH-USDT, FOO-USDT"
    assert "ETH-USDT (184/192)" in check.description

    stored = warehouse.query("SELECT symbol, count(*) AS n FROM raw_ohlc GROUP BY symbol ORDER BY symbol")
    assert dict(zip(stored["symbol"], stored["n"], strict=True)) == {"BTC-USDT": 192, "ETH-USDT": 184}
    assert set(warehouse.query("SELECT DISTINCT exchange FROM raw_ohlc")["exchange"]) == {"binance"}
    facts = metadata(result)
    assert "FOO-USDT" in facts["failed_symbols"]
