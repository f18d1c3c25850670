"""Sending one alert to Slack or to any webhook, and what to do when that fails.

Slack gets its incoming-webhook format (`{"text": ...}`); any other webhook gets the alert as
JSON (the body is documented in the README). A timeout, a connection error, a 429 or a 5xx is
worth retrying later; any other 4xx means the receiver will never take this message.
Webhook URLs are secrets: nothing here puts one in an exception, a log line or a result.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import Enum
from typing import Any

TIMEOUT_SECONDS = 5.0
#: first retry after 30 s, doubling up to an hour between attempts
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0

KIND_ICONS = {"failed": ":red_circle:", "stale": ":large_orange_circle:", "recovered": ":large_green_circle:"}


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # timeout, connection error, 429 or 5xx
    REJECTED = "rejected"  # any other 4xx: retrying would not help


@dataclass(frozen=True)
class Destination:
    """Where alerts go: `name` is what logs show, never the URL."""

    name: str  # "slack" or "webhook"
    url: str

    def body(self, alert: dict[str, Any]) -> dict[str, Any]:
        if self.name == "slack":
            icon = KIND_ICONS.get(alert["state"], ":information_source:")
            return {"text": f"{icon} {alert['text']}"}
        return alert


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    detail: str  # e.g. "HTTP 503", "timed out": safe to log


def send(destination: Destination, alert: dict[str, Any], timeout: float = TIMEOUT_SECONDS) -> Attempt:
    """POST `alert` to `destination` once."""
    request = urllib.request.Request(
        destination.url,
        data=json.dumps(destination.body(alert)).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "crypto_assets-alerts"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return Attempt(Outcome.DELIVERED, f"HTTP {response.status}")
    except urllib.error.HTTPError as error:
        retry = error.code == 429 or error.code >= 500
        return Attempt(Outcome.RETRY if retry else Outcome.REJECTED, f"HTTP {error.code} {error.reason}")
    except urllib.error.URLError as error:  # refused, DNS, TLS: the reason names no URL
        return Attempt(Outcome.RETRY, f"not reachable ({_reason(error.reason)})")
    except (TimeoutError, OSError) as error:
        return Attempt(Outcome.RETRY, f"not reachable ({_reason(error)})")


def retry_delay(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt."""
    return min(FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1), MAX_RETRY_SECONDS)


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return type(reason).__name__
