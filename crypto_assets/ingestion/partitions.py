"""Daily UTC partitions of the base candles; each partition holds every configured symbol.

The symbol is deliberately not a second partition dimension: on the default SQLite instance
a 181-day x 90-symbol multi-partition backfill spent 369 s in Dagster's bookkeeping against
3.9 s for 181 daily keys (shared/STACK_NOTES.md). Runs narrow symbols through run config.
"""

from __future__ import annotations

from datetime import date

from dagster import DailyPartitionsDefinition


def daily_partitions(start: date) -> DailyPartitionsDefinition:
    # end_offset=1: today's partition exists, so the schedule can keep the current day fresh
    return DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC", end_offset=1)
