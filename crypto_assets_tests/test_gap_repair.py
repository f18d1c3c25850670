"""Gap repair: the sensor requests raw_ohlc runs for exactly the days and symbols with holes; a
hole the source cannot fill is recorded once by the repair run and not requested again until it
is cleared.

The source is a CSV folder of three symbols over two days. It holds every bar except ETH-USD's
2025-03-05 10:00-10:45 (the exchange never had them); BTC-USD's 2025-03-04 06:00-06:45 are
deleted from the warehouse after the load, so the source can fill that hole and not the other.
"""

import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    DagsterRun,
    DagsterRunStatus,
    Definitions,
    RunRequest,
    build_sensor_context,
    instance_for_test,
)

from crypto_assets.automation.gap_repair import GAP_TAG, REPAIR_JOB, build_gap_repair_sensor
from crypto_assets.ingestion.checks import GAPS_CHECK, check_window
from crypto_assets.market import Timeframe
from crypto_assets.resources import CandleSourceResource, MarketResource, WarehouseResource
from crypto_assets.warehouse import Warehouse
from crypto_assets.warehouse.gaps import clear_unfillable, find_holes, read_unfillable
from crypto_assets_tests.helpers import RAW_OHLC, SCRIPT, materialize_raw

DAYS = ["2025-03-04", "2025-03-05"]
SYMBOLS = "BTC-USD,ETH-USD,SOL-USD"
M15 = Timeframe.parse("15m")


def write_candles(folder: Path, *, complete: bool = False) -> None:
    folder.mkdir(exist_ok=True)
    ts = pd.date_range(DAYS[0], periods=2 * 96, freq="15min", tz="UTC")
    for n, symbol in enumerate(SYMBOLS.split(",")):
        close = 100.0 * (n + 1) + pd.Series(range(len(ts)), dtype=float) % 7
        bars = pd.DataFrame(
            {
                "timestamp": ts,
                "open": close,
                "high": close + 1,
                "low": close - 1,
                "close": close,
                "volume": 5.0,
            }
        )
        if symbol == "ETH-USD" and not complete:  # the exchange never had these four bars
            bars = bars[
                ~((bars["timestamp"] >= "2025-03-05 10:00Z") & (bars["timestamp"] < "2025-03-05 11:00Z"))
            ]
        bars.to_csv(folder / f"{symbol}.csv", index=False)


@pytest.fixture
def world(tmp_path: Path, warehouse_url: str):
    """A warehouse loaded from the CSV source with one hole of each kind, and the sensor's definitions."""
    folder = tmp_path / "candles"
    write_candles(folder)
    resources = {
        "warehouse": WarehouseResource(url=warehouse_url),
        "source": CandleSourceResource(spec=f"csv:{folder}"),
        "market": MarketResource(symbols=SYMBOLS),
    }
    sensor = build_gap_repair_sensor(Timeframe.parse("15m"))
    defs = Definitions(assets=[RAW_OHLC], sensors=[sensor], resources=resources)
    with instance_for_test() as instance:
        loaded = materialize_raw(
            warehouse_url, first_day=DAYS[0], last_day=DAYS[1], source=f"csv:{folder}", symbols=SYMBOLS
        )
        assert loaded.success
        with Warehouse(warehouse_url) as db, db.begin() as connection:  # a hole the source can fill
            connection.exec_driver_sql(
                "DELETE FROM raw_ohlc WHERE symbol = 'BTC-USD' "
                "AND ts >= '2025-03-04 06:00:00+00' AND ts < '2025-03-04 07:00:00+00'"
            )
        yield instance, defs, sensor, warehouse_url, folder


def tick(instance, defs, sensor, cursor: str | None = None, logs: list[str] | None = None):
    context = build_sensor_context(
        instance=instance, definitions=defs, resources=defs.resources, cursor=cursor
    )
    if logs is not None:
        context.log.addHandler(_ListHandler(logs))
    return sensor.evaluate_tick(context)


class _ListHandler(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


def launch(instance, defs, request: RunRequest):
    """What the daemon does with a request: a run of the repair job with its partition, config and tags."""
    return (
        defs.resolve_job_def(REPAIR_JOB)
        .execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            run_config=request.run_config,
            tags={**request.tags, "dagster/run_key": request.run_key},
        )
        .dagster_run
    )


def unfillable(url: str) -> pd.DataFrame:
    db = Warehouse(url)
    try:
        with db.read() as connection:
            return read_unfillable(connection)
    finally:
        db.dispose()


def bars(url: str, symbol: str) -> int:
    db = Warehouse(url)
    try:
        return int(db.query("SELECT count(*) AS n FROM raw_ohlc WHERE symbol = :s", {"s": symbol})["n"][0])
    finally:
        db.dispose()


def test_repairs_what_it_can_records_what_it_cannot_and_asks_again_only_when_cleared(world):
    instance, defs, sensor, url, _ = world
    first = tick(instance, defs, sensor)
    btc, eth = first.run_requests  # one run per affected day, for exactly its symbols, oldest first
    assert (btc.partition_key, btc.run_config["ops"]["raw_ohlc"]["config"]) == (
        DAYS[0],
        {"symbols": ["BTC-USD"], "repair": True},
    )
    assert (eth.partition_key, eth.run_config["ops"]["raw_ohlc"]["config"]) == (
        DAYS[1],
        {"symbols": ["ETH-USD"], "repair": True},
    )
    assert btc.run_key.endswith("#1") and btc.tags[GAP_TAG] == btc.run_key.removesuffix("#1")

    # BTC's run is running: its hole is not asked again meanwhile; ETH's (not launched) keeps its key
    queued = DagsterRun(
        job_name=REPAIR_JOB,
        run_id=str(uuid.uuid4()),
        run_config=btc.run_config,
        status=DagsterRunStatus.STARTED,
        tags={**btc.tags, "dagster/partition": btc.partition_key},
    )
    instance.add_run(queued)
    assert [r.run_key for r in tick(instance, defs, sensor).run_requests] == [eth.run_key]
    instance.delete_run(queued.run_id)

    assert launch(instance, defs, btc).status == DagsterRunStatus.SUCCESS
    eth_run = launch(instance, defs, eth)
    assert eth_run.status == DagsterRunStatus.SUCCESS
    assert bars(url, "BTC-USD") == 2 * 96  # filled
    (record,) = unfillable(url).to_dict(orient="records")  # ETH's: recorded once, with when and by whom
    assert (record["symbol"], record["missing_bars"], record["run_id"]) == ("ETH-USD", 4, eth_run.run_id)
    assert pd.Timestamp(record["first_missing"]) == pd.Timestamp("2025-03-05 10:00Z")
    assert pd.Timestamp(record["last_missing"]) == pd.Timestamp("2025-03-05 10:45Z")
    assert record["tried_at"] is not None

    quiet = tick(instance, defs, sensor)  # nothing left to ask for
    assert not quiet.run_requests
    assert "1 recorded as unfillable" in quiet.skip_message

    with Warehouse(url) as db:
        check = next(check_window(db, "15m", M15.seconds, *_day(DAYS[1]), {GAPS_CHECK}))
    assert not check.passed and check.metadata["unfillable_count"].value == 1
    assert "ETH-USD" in check.metadata["unfillable"].value

    # a second try (the same hole asked again) keeps the first record
    launch(instance, defs, eth)
    assert unfillable(url).to_dict(orient="records") == [record]

    db = Warehouse(url)
    with db.begin() as connection:
        assert clear_unfillable(connection, symbol="ETH-USD") == 1
    db.dispose()
    (again,) = tick(instance, defs, sensor).run_requests  # tried again, under a fresh run key
    assert again.run_config["ops"]["raw_ohlc"]["config"]["symbols"] == ["ETH-USD"]
    assert again.run_key == eth.run_key.replace("#1", "#3")


def _day(day: str):
    start = pd.Timestamp(day, tz="UTC").to_pydatetime()
    return start, start + pd.Timedelta(days=1).to_pytimedelta()


def test_a_failed_repair_run_is_asked_again_then_given_up_with_one_warning(world):
    instance, defs, sensor, _, _ = world
    request = tick(instance, defs, sensor).run_requests[0]
    cursor, logs = None, []
    for attempt in range(1, 4):
        assert request.run_key.endswith(f"#{attempt}")
        instance.add_run(
            DagsterRun(
                job_name=REPAIR_JOB,
                run_id=str(uuid.uuid4()),
                run_config=request.run_config,
                status=DagsterRunStatus.FAILURE,
                tags={**request.tags, "dagster/partition": request.partition_key},
            )
        )
        result = tick(instance, defs, sensor, cursor, logs)
        cursor = result.cursor
        request = next((r for r in result.run_requests if r.partition_key == DAYS[0]), None)
    assert request is None  # three failed runs: not asked again (the failures show in status)
    for _ in range(3):
        result = tick(instance, defs, sensor, cursor, logs)
        assert not any(r.partition_key == DAYS[0] for r in result.run_requests)
        cursor = result.cursor
    given_up = [line for line in logs if "3 repair runs failed, not asked again" in line]
    assert len(given_up) == 1 and given_up[0].startswith(f"{DAYS[0]} BTC-USD: 3 repair runs failed")


def test_holes_are_cut_at_midnight_and_edges_are_not_holes(warehouse_url: str, tmp_path: Path):
    folder = tmp_path / "candles"
    write_candles(folder)
    assert materialize_raw(
        warehouse_url, first_day=DAYS[0], last_day=DAYS[1], source=f"csv:{folder}", symbols=SYMBOLS
    ).success
    db = Warehouse(warehouse_url)
    with db.begin() as connection:
        connection.exec_driver_sql(  # BTC: 23:00..00:45 across midnight; SOL: its first and last hours
            "DELETE FROM raw_ohlc WHERE (symbol = 'BTC-USD' AND ts >= '2025-03-04 23:00:00+00' "
            "AND ts < '2025-03-05 01:00:00+00') OR (symbol = 'SOL-USD' AND (ts < '2025-03-04 01:00:00+00' "
            "OR ts >= '2025-03-05 23:00:00+00'))"
        )
    with db.read() as connection:
        holes = find_holes(connection, exchange="csv", timeframe=M15)
    db.dispose()
    assert [(h.symbol, str(h.day), f"{h.first_missing:%H:%M}", f"{h.last_missing:%H:%M}", h.missing_bars)
            for h in holes] == [
        ("BTC-USD", "2025-03-04", "23:00", "23:45", 4),
        ("BTC-USD", "2025-03-05", "00:00", "00:45", 4),
        ("ETH-USD", "2025-03-05", "10:00", "10:45", 4),
    ]  # fmt: skip


@pytest.mark.parametrize("warehouse_url", ["duckdb"], indirect=True)
def test_a_warehouse_held_by_a_writer_skips_the_tick(world):
    instance, defs, sensor, url, _ = world
    path = Warehouse(url).url.database
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({path!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        result = tick(instance, defs, sensor)
    finally:
        holder.kill()
        holder.wait()
    assert not result.run_requests
    assert result.skip_message.startswith("warehouse not readable now (")
    assert len(tick(instance, defs, sensor).run_requests) == 2  # the next tick goes on


def test_gaps_command_lists_and_clears(world, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    instance, defs, sensor, url, _ = world
    for request in tick(instance, defs, sensor).run_requests:
        launch(instance, defs, request)
    env = {"CRYPTO_ASSETS_WAREHOUSE_URL": url, "CRYPTO_ASSETS_HOME": str(tmp_path / "home")}

    def cli(*args, command="gaps"):
        environment = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        return subprocess.run(
            [SCRIPT, command, *args], capture_output=True, text=True, env={**environment, **env}, timeout=120
        )

    listed = cli()
    assert listed.returncode == 0 and listed.stderr == ""
    assert "ETH-USD" in listed.stdout and "2025-03-05 10:00" in listed.stdout
    if url.startswith("duckdb"):  # status shows them too (a warning: the run exits 1 for other reasons)
        status = cli("--json", command="status")
        document = json.loads(status.stdout)
        (gap,) = document["unfillable_gaps"]
        assert (gap["symbol"], gap["missing_bars"]) == ("ETH-USD", 4)
        assert any("ETH-USD 4 bar(s)" in warning for warning in document["warnings"])
        text = cli(command="status")
        assert "unfillable gaps" in text.stdout and "2025-03-05 10:00" in text.stdout
        assert text.stderr.startswith("unhealthy: ") and len(text.stderr.splitlines()) == 1
    bad = cli("--clear", "not a symbol")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    cleared = cli("--clear", "ETH-USD")
    assert cleared.returncode == 0 and "cleared 1 unfillable hole(s) of ETH-USD" in cleared.stdout
    assert "no unfillable holes recorded" in cli().stdout


def test_a_load_that_stores_a_bar_inside_a_recorded_hole_drops_the_record(world):
    instance, defs, sensor, url, folder = world
    eth = tick(instance, defs, sensor).run_requests[1]
    launch(instance, defs, eth)
    assert len(unfillable(url)) == 1
    write_candles(folder, complete=True)  # the exchange published the bars after all
    assert materialize_raw(
        url, first_day=DAYS[1], last_day=DAYS[1], source=f"csv:{folder}", symbols=SYMBOLS
    ).success  # an ordinary load (the schedule's, a backfill), not a repair
    assert unfillable(url).empty and bars(url, "ETH-USD") == 2 * 96


def test_a_recorded_hole_that_grows_is_recorded_as_it_is_now_and_not_asked_again(world):
    instance, defs, sensor, url, folder = world
    btc, eth = tick(instance, defs, sensor).run_requests
    launch(instance, defs, btc)  # filled
    launch(instance, defs, eth)
    (record,) = unfillable(url).to_dict(orient="records")
    assert record["missing_bars"] == 4  # 10:00..10:45
    # the bar after the hole is lost too, at the exchange and in the warehouse: same first missing bar
    csv = folder / "ETH-USD.csv"
    bars_at_source = pd.read_csv(csv)
    bars_at_source[bars_at_source["timestamp"] != "2025-03-05 11:00:00+00:00"].to_csv(csv, index=False)
    with Warehouse(url) as db, db.begin() as connection:
        connection.exec_driver_sql(
            "DELETE FROM raw_ohlc WHERE symbol = 'ETH-USD' AND ts = '2025-03-05 11:00:00+00'"
        )
    (wider,) = tick(instance, defs, sensor).run_requests
    assert wider.partition_key == DAYS[1] and wider.run_key != eth.run_key
    run = launch(instance, defs, wider)
    (record,) = unfillable(url).to_dict(orient="records")
    assert (record["missing_bars"], record["run_id"]) == (5, run.run_id)
    assert pd.Timestamp(record["last_missing"]) == pd.Timestamp("2025-03-05 11:00Z")
    quiet = tick(instance, defs, sensor)
    assert not quiet.run_requests and "1 recorded as unfillable" in quiet.skip_message
