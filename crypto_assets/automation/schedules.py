"""The schedule that keeps raw_ohlc current: a run right after each base bar closes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from dagster import (
    AssetsDefinition,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from crypto_assets.market import Timeframe

# Exchanges publish a closed bar a little after its close: ask one minute later.
CLOSE_DELAY_MINUTES = 1


def cron_after_each_bar(timeframe: Timeframe) -> str:
    """A cron that fires CLOSE_DELAY_MINUTES after every bar of `timeframe` closes (UTC)."""
    minutes = timeframe.seconds // 60
    if minutes < 60:
        fire = sorted({(m + CLOSE_DELAY_MINUTES) % 60 for m in range(0, 60, minutes)})
        return "* * * * *" if len(fire) == 60 else f"{','.join(map(str, fire))} * * * *"
    hours = minutes // 60
    if hours == 1:
        return f"{CLOSE_DELAY_MINUTES} * * * *"
    if hours < 24:
        return f"{CLOSE_DELAY_MINUTES} {','.join(str(h) for h in range(0, 24, hours))} * * *"
    return f"{CLOSE_DELAY_MINUTES} 0 * * *"


def build_raw_ohlc_schedule(raw_ohlc: AssetsDefinition, timeframe: Timeframe) -> ScheduleDefinition:
    job = define_asset_job(
        "refresh_raw_ohlc",
        selection=[raw_ohlc.key],
        partitions_def=raw_ohlc.partitions_def,
        description="Load the newest closed bars of every configured symbol.",
    )

    @schedule(
        name="raw_ohlc_after_each_bar",
        job=job,
        cron_schedule=cron_after_each_bar(timeframe),
        execution_timezone="UTC",
        # on by default: this replaces the cron line / LaunchAgent a tracker would otherwise need
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Refresh today's raw_ohlc partition after every {timeframe} bar closes.",
    )
    def raw_ohlc_after_each_bar(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        now = context.scheduled_execution_time
        closed_bar_open = now - timedelta(minutes=CLOSE_DELAY_MINUTES) - timeframe.delta
        # just after midnight the bar that closed belongs to yesterday's partition
        for day in sorted({closed_bar_open.date(), now.date()}):
            yield RunRequest(run_key=f"{day}@{now:%Y-%m-%dT%H:%M}", partition_key=day.isoformat())

    return raw_ohlc_after_each_bar
