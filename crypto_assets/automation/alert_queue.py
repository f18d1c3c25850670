"""The messages waiting to be sent (kept in the alerts sensor's cursor) and one tick of sending.

Messages to one destination go in order: one waits behind an older one to the same destination,
so "stale" never arrives after "fresh again". A tick makes at most MAX_SENDS_PER_TICK attempts
and starts none after SEND_BUDGET_SECONDS (one attempt may take its timeout), so even the tick
after a long outage ends well inside Dagster's 60 s limit for a sensor and its progress is
saved; the rest go on the next ticks. At most MAX_QUEUED messages wait: beyond that the oldest
are dropped, with a warning in the sensor's log that counts them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from logging import Logger
from typing import Any

from crypto_assets.automation.alert_delivery import Destination, Outcome, retry_delay, send, url_problem

MAX_QUEUED = 500
MAX_SENDS_PER_TICK = 50
SEND_BUDGET_SECONDS = 20.0


@dataclass
class Queued:
    alert: dict[str, Any]
    destination: str
    attempts: int = 0
    next_try: float = 0.0


def enqueue(
    queue: Sequence[Queued], alerts: Iterable[dict[str, Any]], destinations: Iterable[str], log: Logger
) -> list[Queued]:
    """`queue` with one message per alert and destination added, the oldest dropped past MAX_QUEUED."""
    names = list(destinations)
    queue = [*queue, *(Queued(item, name) for item in alerts for name in names)]
    if len(queue) > MAX_QUEUED:
        dropped = len(queue) - MAX_QUEUED
        log.warning(f"{dropped} undelivered alert(s) dropped, the oldest: more than {MAX_QUEUED} waiting")
        queue = queue[dropped:]
    return queue


@dataclass
class Tick:
    """One tick of sending: what is left, and which destinations have an unusable URL."""

    queue: list[Queued]
    unusable: set[str]
    sent: int = 0
    left_for_later: int = 0  # due, but past this tick's limits


def deliver(
    queue: Sequence[Queued],
    destinations: Mapping[str, Destination],
    unusable: Iterable[str],
    timeout: float,
    log: Logger,
) -> Tick:
    """Send the messages whose time has come. A destination that fails is not tried again in
    this tick, so one slow receiver cannot hold the sensor; `unusable` are the destinations
    whose URL problem was already reported (reported once, until a send gets through)."""
    tick = Tick(queue=[], unusable=set(unusable) & set(destinations))
    now = started = time.time()
    held: set[str] = set()
    for destination in destinations.values():
        problem = url_problem(destination.url)
        if problem is not None:
            _unusable(tick, destination, problem, log)
            held.add(destination.name)
    attempts, gone = 0, Counter()
    for item in queue:
        destination = destinations.get(item.destination)
        if destination is None:  # its variable was unset since: nowhere left to send it
            gone[item.destination] += 1
            continue
        if item.destination in held:
            tick.queue.append(item)
            continue
        if item.next_try > now:  # and the younger ones wait behind it
            held.add(item.destination)
            tick.queue.append(item)
            continue
        if attempts >= MAX_SENDS_PER_TICK or time.time() - started >= SEND_BUDGET_SECONDS:
            tick.left_for_later += 1
            tick.queue.append(item)
            continue
        attempts += 1
        attempt = send(destination, item.alert, timeout)
        if attempt.outcome is Outcome.UNUSABLE:
            _unusable(tick, destination, attempt.detail, log)
            held.add(item.destination)
            tick.queue.append(item)
            continue
        if destination.name in tick.unusable:
            tick.unusable.discard(destination.name)
            log.info(f"{destination.name}: the URL in {destination.variable} works again")
        if attempt.outcome is Outcome.DELIVERED:
            tick.sent += 1
        elif attempt.outcome is Outcome.REJECTED:
            log.error(
                f"{destination.name} refused an alert ({attempt.detail}); not retried: check the "
                f"receiver's configuration. The alert was: {item.alert['text']}"
            )
        else:
            item.attempts += 1
            wait = attempt.retry_after if attempt.retry_after is not None else retry_delay(item.attempts)
            item.next_try = now + wait
            held.add(item.destination)
            tick.queue.append(item)
            asked = " (as the receiver asked)" if attempt.retry_after is not None else ""
            log.warning(
                f"{destination.name} did not take an alert ({attempt.detail}); attempt {item.attempts}, "
                f"next in {wait:.0f} s{asked}"
            )
    for name, count in sorted(gone.items()):
        log.warning(f"{count} alert(s) for {name} dropped: it is no longer configured")
    return tick


def _unusable(tick: Tick, destination: Destination, problem: str, log: Logger) -> None:
    if destination.name not in tick.unusable:
        tick.unusable.add(destination.name)
        log.error(
            f"{destination.name}: the URL in {destination.variable} cannot be used ({problem}); its "
            f"alerts wait (up to {MAX_QUEUED}) until it is fixed, the other destinations get theirs"
        )
