"""Gap repair: a sensor that requests raw_ohlc runs for exactly the days and symbols with holes.

Each tick reads the warehouse (read-only) for holes inside each symbol's stored range
(crypto_assets.warehouse.gaps) and asks for one `repair_raw_ohlc` run per UTC day that has any,
its partition that day and its run config the symbols with a hole there. The run loads those
symbols again with `repair: true`: a hole the source returned nothing for is then recorded in
`ohlc_unfillable_gaps`, by the run itself, in the warehouse pool (a sensor never writes the
warehouse: on DuckDB it would fight the runs for the one writer's lock). Recorded holes are not
requested again until cleared (`crypto-assets gaps --clear [SYMBOL]`).

What was asked lives in the instance, not in a cursor: every repair run carries the tag
`crypto_assets/gap_repair` naming its day and holes, and its run key adds the attempt number.
So a hole is never asked twice while a run for it is queued or running (run keys, and the
symbols of in-flight repair runs are skipped), a hole whose run failed is asked again up to
MAX_FAILED_RUNS times, and a hole someone cleared is asked again with a fresh key. The sensor's
cursor only names the holes given up on that it already warned about, so the warning is logged
once (losing the cursor repeats a warning, nothing else).

On by default: filling holes is what a tracker's backfill_missing_symbols.py cron did, users
expect it without a switch, and it is bounded (MAX_RUNS_PER_TICK days per tick, one tick every
TICK_SECONDS, never the same hole twice once recorded).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from crypto_assets.errors import UserError
from crypto_assets.market import Timeframe
from crypto_assets.resources import CandleSourceResource, WarehouseResource

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from crypto_assets.warehouse.gaps import Hole

REPAIR_JOB = "repair_raw_ohlc"
SENSOR_NAME = "repair_raw_ohlc_gaps"
GAP_TAG = "crypto_assets/gap_repair"
TICK_SECONDS = 600
MAX_RUNS_PER_TICK = 10
MAX_FAILED_RUNS = 3
_IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class DayRepair:
    """The holes of one UTC day: one repair run of that partition for their symbols."""

    holes: tuple[Hole, ...]

    @property
    def day(self) -> str:
        return self.holes[0].day.isoformat()

    @property
    def symbols(self) -> list[str]:
        return sorted({hole.symbol for hole in self.holes})

    @property
    def key(self) -> str:
        """Names the day and exactly these holes: a changed set of holes is a new request."""
        text = ";".join(f"{h.symbol}@{h.first_missing.isoformat()}/{h.missing_bars}" for h in self.holes)
        return f"{self.day}:{hashlib.sha1(text.encode()).hexdigest()[:12]}"

    def run_request(self, attempt: int) -> RunRequest:
        return RunRequest(
            run_key=f"{self.key}#{attempt}",
            partition_key=self.day,
            run_config={"ops": {"raw_ohlc": {"config": {"symbols": self.symbols, "repair": True}}}},
            tags={GAP_TAG: self.key},
        )


def plan_repairs(holes: Sequence[Hole], is_recorded, busy: set[tuple[str, str]]) -> list[DayRepair]:
    """One DayRepair per day, oldest first, for the holes neither recorded as unfillable nor of a
    (day, symbol) a repair run in flight is loading."""
    by_day: dict[str, list[Hole]] = defaultdict(list)
    for hole in sorted(holes):
        if not is_recorded(hole) and (hole.day.isoformat(), hole.symbol) not in busy:
            by_day[hole.day.isoformat()].append(hole)
    return [DayRepair(tuple(by_day[day])) for day in sorted(by_day)]


class WarehouseNotReadable(Exception):
    """The warehouse could not be read this tick (DuckDB file held by a writer, server down)."""


def read_holes(url: str, exchange: str, timeframe: Timeframe) -> tuple[list[Hole], object] | None:
    """The holes and the recorded unfillable ones; None when nothing is stored yet. Read-only."""
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError

    from crypto_assets.warehouse import Warehouse
    from crypto_assets.warehouse.gaps import find_holes, read_unfillable

    with Warehouse(url) as warehouse:  # a malformed URL is a UserError the loads report too
        if warehouse.is_duckdb and not Path(warehouse.url.database or "").exists():
            return None  # reading would create the file
        try:
            with warehouse.read() as connection:
                if not sa.inspect(connection).has_table("raw_ohlc"):
                    return None
                holes = find_holes(connection, exchange=exchange, timeframe=timeframe)
                unfillable = read_unfillable(connection, exchange=exchange, timeframe=timeframe.name)
        except (UserError, SQLAlchemyError) as error:
            raise WarehouseNotReadable(_first_line(error)) from error
    return holes, unfillable


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _busy(instance: DagsterInstance) -> set[tuple[str, str]]:
    """(day, symbol) pairs that a queued or running repair run is loading."""
    busy = set()
    for record in instance.get_run_records(RunsFilter(job_name=REPAIR_JOB, statuses=_IN_FLIGHT)):
        run = record.dagster_run
        day = run.tags.get("dagster/partition")
        config = (run.run_config or {}).get("ops", {}).get("raw_ohlc", {}).get("config", {})
        busy |= {(day, symbol) for symbol in config.get("symbols") or []}
    return busy


def _history(instance: DagsterInstance, keys: Sequence[str]) -> dict[str, list[DagsterRunStatus]]:
    """The statuses of the repair runs asked for each key so far."""
    runs: dict[str, list[DagsterRunStatus]] = defaultdict(list)
    if keys:
        for record in instance.get_run_records(RunsFilter(tags={GAP_TAG: list(keys)})):
            runs[record.dagster_run.tags[GAP_TAG]].append(record.dagster_run.status)
    return runs


def build_gap_repair_sensor(timeframe: Timeframe) -> SensorDefinition:
    """The sensor that repairs holes in raw_ohlc's `timeframe` candles."""
    job = define_asset_job(
        REPAIR_JOB,
        selection=AssetSelection.assets("raw_ohlc"),
        description="Load raw_ohlc again for the days and symbols the gap repair sensor found holes in.",
    )

    @sensor(
        name=SENSOR_NAME,
        job=job,
        minimum_interval_seconds=TICK_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Finds holes inside each symbol's stored range of raw_ohlc and requests a repair run "
            "per affected day for exactly the affected symbols. Holes the source returns nothing "
            "for are recorded in ohlc_unfillable_gaps and not requested again until cleared "
            "(crypto-assets gaps --clear)."
        ),
    )
    def repair_raw_ohlc_gaps(
        context: SensorEvaluationContext,
        warehouse: WarehouseResource,
        source: CandleSourceResource,
    ) -> Iterator[RunRequest | SkipReason]:
        from crypto_assets.warehouse.gaps import is_recorded

        try:
            found = read_holes(warehouse.url, source.open().exchange, timeframe)
        except WarehouseNotReadable as error:
            yield SkipReason(f"warehouse not readable now ({error}); the next tick tries again")
            return
        except UserError as error:  # a bad warehouse URL or source: the loads fail and say so too
            yield SkipReason(str(error))
            return
        if found is None:
            yield SkipReason("no candles stored yet")
            return
        holes, unfillable = found
        recorded = [hole for hole in holes if is_recorded(hole, unfillable)]
        repairs = plan_repairs(holes, lambda hole: is_recorded(hole, unfillable), _busy(context.instance))
        history = _history(context.instance, [repair.key for repair in repairs])
        requested, waiting, given_up = [], [], []
        for repair in repairs:
            runs = history.get(repair.key, [])
            if any(status in _IN_FLIGHT for status in runs):
                waiting.append(repair)
            elif (
                sum(s in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED) for s in runs)
                >= MAX_FAILED_RUNS
            ):
                given_up.append(repair)
            elif len(requested) < MAX_RUNS_PER_TICK:
                requested.append(repair)
                context.log.info(
                    f"repair {repair.day} for {', '.join(repair.symbols)}: "
                    + "; ".join(hole.describe() for hole in repair.holes)
                )
                yield repair.run_request(attempt=len(runs) + 1)
        reported = set(json.loads(context.cursor)) if context.cursor else set()
        for repair in given_up:
            if repair.key not in reported:  # once; the tick's skip reason keeps counting them
                context.log.warning(
                    f"{repair.day} {', '.join(repair.symbols)}: {MAX_FAILED_RUNS} repair runs failed, not "
                    "asked again; see the failed runs of the repair_raw_ohlc job"
                )
        context.update_cursor(json.dumps(sorted(repair.key for repair in given_up)))
        if not requested:
            asked = len(holes) - len(recorded) - sum(len(r.holes) for r in given_up)
            yield SkipReason(
                f"{len(holes)} hole(s): {len(recorded)} recorded as unfillable (crypto-assets gaps), "
                f"{asked} in a repair run now, {sum(len(r.holes) for r in given_up)} given up after "
                f"{MAX_FAILED_RUNS} failed runs"
                if holes
                else "no holes inside any symbol's stored range"
            )

    return repair_raw_ohlc_gaps
