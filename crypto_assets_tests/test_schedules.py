from datetime import UTC, date, datetime

import pytest
from dagster import Definitions, build_schedule_context, instance_for_test

from crypto_assets.automation.schedules import build_raw_ohlc_schedule, cron_after_each_bar
from crypto_assets.ingestion.assets import build_raw_ohlc
from crypto_assets.market import Timeframe
from crypto_assets.resources import shared_resources, source_resource
from crypto_assets.settings import load_settings

RAW = build_raw_ohlc(date(2025, 1, 1), Timeframe.parse("15m"))


@pytest.mark.parametrize(
    ("timeframe", "cron"),
    [
        ("1m", "* * * * *"),  # every minute is one minute after a close
        ("5m", "1,6,11,16,21,26,31,36,41,46,51,56 * * * *"),
        ("15m", "1,16,31,46 * * * *"),
        ("30m", "1,31 * * * *"),
        ("1h", "1 * * * *"),
        ("4h", "1 0,4,8,12,16,20 * * *"),
        ("1d", "1 0 * * *"),
    ],
)
def test_cron_fires_just_after_each_bar_closes(timeframe: str, cron: str):
    assert cron_after_each_bar(Timeframe.parse(timeframe)) == cron


@pytest.mark.parametrize(
    ("when", "partitions"),
    [
        (datetime(2025, 6, 3, 10, 16, tzinfo=UTC), ["2025-06-03"]),
        (datetime(2025, 6, 3, 0, 1, tzinfo=UTC), ["2025-06-02", "2025-06-03"]),  # 23:45 bar closed
    ],
)
def test_schedule_refreshes_the_partition_of_the_bar_that_just_closed(when: datetime, partitions: list[str]):
    schedule = build_raw_ohlc_schedule(RAW, Timeframe.parse("15m"))
    with instance_for_test() as instance:
        settings = load_settings({})
        repository = Definitions(
            assets=[RAW],
            schedules=[schedule],
            resources={**shared_resources(settings), "source": source_resource(settings)},
        ).get_repository_def()
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=when, repository_def=repository
        )
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == partitions
    assert len({r.run_key for r in requests}) == len(requests)
