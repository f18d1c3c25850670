"""What the alerts sensor reads as a change: checks per partition, model records however many and
whenever they land, run failures a batch at a time, and what the first tick reports."""

import json
import threading
from collections.abc import Iterator

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetMaterialization,
    BackfillPolicy,
    Config,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    instance_for_test,
    materialize,
)
from dagster._core.definitions.freshness import FreshnessState

from crypto_assets.automation import alert_changes
from crypto_assets.automation.alerts import AlertsResource
from crypto_assets.quiet import quietly
from crypto_assets_tests.alert_deployment import Deployment, dca_model, stale
from crypto_assets_tests.alert_receiver import Receiver, alert_receiver

DAYS = DailyPartitionsDefinition(start_date="2025-01-01")


class PricesConfig(Config):
    bad: list[str] = []  # the partitions with bad prices


@quietly(
    asset,
    partitions_def=DAYS,
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=[quietly(AssetCheckSpec, "prices_sane", asset="prices", partitions_def=DAYS)],
)
def prices(context, config: PricesConfig):
    """A partitioned asset with a partitioned check, loaded a day or a range of days per run."""
    bad = sorted(set(config.bad) & set(context.partition_keys))
    yield MaterializeResult()
    yield AssetCheckResult(
        passed=not bad, severity=AssetCheckSeverity.ERROR, description=f"high < low on {', '.join(bad)}"
    )


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


def load_prices(instance: DagsterInstance, first: str, last: str | None = None, bad: tuple = ()) -> None:
    """One run of `prices` over a day, or over a range of days (a single-run backfill)."""
    where = (
        {"partition_key": first}
        if last is None
        else {
            "tags": {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        }
    )
    run_config = {"ops": {"prices": {"config": {"bad": list(bad)}}}}
    assert materialize([prices], instance=instance, run_config=run_config, **where).success


def check_texts(receiver: Receiver) -> list[str]:
    return [body["text"] for body in receiver.bodies if body["kind"].startswith("check_")]


def test_a_partitioned_check_fails_while_any_partition_fails(instance: DagsterInstance, receiver: Receiver):
    deployment = Deployment(instance, AlertsResource(webhook_url=receiver.url), assets=[prices, dca_model])
    deployment.tick()
    load_prices(instance, "2025-03-03", bad=("2025-03-03",))
    deployment.tick()
    load_prices(instance, "2025-03-04")  # today passes: yesterday still fails
    deployment.tick()
    load_prices(instance, "2025-03-04", bad=("2025-03-04",))  # today fails too: news
    deployment.tick()
    load_prices(instance, "2025-03-03")
    deployment.tick()
    load_prices(instance, "2025-03-04")
    deployment.tick()
    deployment.tick()
    assert check_texts(receiver) == [
        "check prices:prices_sane failed on 2025-03-03 (ERROR): high < low on 2025-03-03",
        "check prices:prices_sane failed on 2025-03-04 (ERROR): high < low on 2025-03-04; failing on 1 other "
        "partition(s) too",
        "check prices:prices_sane passes again on every partition",
    ]
    assert receiver.bodies[1]["details"]["partitions"] == ["2025-03-04"]
    assert json.loads(deployment.cursor)["checks"] == {}


def test_a_single_run_backfill_counts_for_each_partition_it_checked(
    instance: DagsterInstance, receiver: Receiver
):
    deployment = Deployment(instance, AlertsResource(webhook_url=receiver.url), assets=[prices, dca_model])
    deployment.tick()
    load_prices(instance, "2025-03-05", "2025-03-07", bad=("2025-03-06",))
    deployment.tick()
    days = "2025-03-05, 2025-03-06, 2025-03-07"
    assert check_texts(receiver) == [
        f"check prices:prices_sane failed on {days} (ERROR): high < low on 2025-03-06"
    ]

    # a deployment whose sensor starts now sees the same state (from the per-partition records)
    with alert_receiver() as fresh:
        Deployment(instance, AlertsResource(webhook_url=fresh.url), assets=[prices, dca_model]).tick()
        assert check_texts(fresh) == check_texts(receiver)

    load_prices(instance, "2025-03-06")  # one day of the range loaded again, now good
    deployment.tick()
    assert json.loads(deployment.cursor)["checks"] == {"prices:prices_sane": ["2025-03-05", "2025-03-07"]}
    load_prices(instance, "2025-03-05", "2025-03-07")
    deployment.tick()
    assert check_texts(receiver)[1:] == ["check prices:prices_sane passes again on every partition"]


def test_the_first_tick_reports_what_is_bad_now_but_no_old_run_or_training(
    instance: DagsterInstance, receiver: Receiver
):
    deployment = Deployment(instance, AlertsResource(webhook_url=receiver.url))
    assert not deployment.run(valid=False)  # a failed run and a failing check, before the sensor
    instance.report_runless_asset_event(
        AssetMaterialization("dca_model", metadata={"promotion": "promoted", "model_version": 1})
    )
    stale(instance, "candles", FreshnessState.PASS, FreshnessState.FAIL)
    deployment.tick()
    deployment.tick()
    assert sorted(body["kind"] for body in receiver.bodies) == ["asset_stale", "check_failed"]


def promote(instance: DagsterInstance, versions: range) -> None:
    for version in versions:
        instance.report_runless_asset_event(
            AssetMaterialization("dca_model", metadata={"promotion": "promoted", "model_version": version})
        )


def test_model_records_are_each_reported_once_however_many_and_whenever_they_land(
    instance: DagsterInstance, receiver: Receiver
):
    deployment = Deployment(instance, AlertsResource(webhook_url=receiver.url))
    deployment.tick()
    promote(instance, range(1, 151))  # more than one page
    deployment.tick()
    assert sum(line.startswith("alert: dca_model") for line in deployment.logs) == 150

    writer = threading.Thread(target=promote, args=(instance, range(151, 301)))
    writer.start()  # records land while the sensor reads
    while writer.is_alive():
        deployment.tick()
    writer.join()
    while deployment.tick().queue:  # the rest of the messages (a tick sends 50 at most)
        pass
    assert sorted(body["details"]["version"] for body in receiver.bodies) == list(range(1, 301))


def test_run_failures_are_read_a_batch_per_tick(
    instance: DagsterInstance, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(alert_changes, "RUN_BATCH", 2)
    deployment = Deployment(instance, AlertsResource(webhook_url=receiver.url))
    deployment.tick()
    for n in range(3):
        assert not deployment.run(fail_with=f"boom {n}")
    deployment.tick()
    assert [b["details"]["error"] for b in receiver.bodies] == [
        "RuntimeError: boom 0",
        "RuntimeError: boom 1",
    ]
    deployment.tick()
    deployment.tick()
    assert [b["details"]["error"] for b in receiver.bodies][2:] == ["RuntimeError: boom 2"]


def test_a_cursor_of_the_earlier_format_repeats_nothing(instance: DagsterInstance, receiver: Receiver):
    deployment = Deployment(instance, AlertsResource(webhook_url=receiver.url))
    assert not deployment.run(valid=False)
    # what the sensor stored before checks were tracked per partition and models per model
    deployment.cursor = json.dumps(
        {
            "freshness": {},
            "checks": {"candles:candles_valid": "failed"},
            "runs": "",
            "models_after": instance.event_log_storage.get_maximum_record_id(),
            "queue": [],
        }
    )
    promote(instance, range(7, 8))
    deployment.tick()  # "runs": "" said no run had failed then: the failure since is news
    assert deployment.run(valid=True)
    deployment.tick()
    assert [body["kind"] for body in receiver.bodies] == ["run_failed", "model_promoted", "check_recovered"]
