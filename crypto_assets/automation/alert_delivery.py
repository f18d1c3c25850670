"""Sending one alert to Slack or to any webhook, and what to do when that fails.

Slack gets its incoming-webhook format (`{"text": ...}`); any other webhook gets the alert as
JSON (the body is documented in the README). A timeout, a connection error, a 429 or a 5xx is
worth retrying later (when the receiver sends `Retry-After`, that long, at most an hour); any
other 4xx means the receiver will never take this message; a URL that cannot be used at all (no
scheme, a space, a bad port) is a configuration error of its variable.
Webhook URLs are secrets: nothing here puts one in an exception, a log line or a result. The
standard library quotes the URL in some of its errors, so only the class of an error is kept.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from enum import Enum
from http import HTTPStatus
from typing import Any

TIMEOUT_SECONDS = 5.0
#: first retry after 30 s, doubling up to an hour between attempts
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0
#: the variable each destination's URL comes from, named in logs instead of the URL
VARIABLES = {"slack": "SLACK_WEBHOOK_URL", "webhook": "CRYPTO_ASSETS_ALERT_WEBHOOK"}

KIND_ICONS = {"failed": ":red_circle:", "stale": ":large_orange_circle:", "recovered": ":large_green_circle:"}
_NOT_IN_URLS = re.compile(r"[\x00-\x20\x7f]")  # what http.client refuses, with the URL in its message


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # timeout, connection error, 429 or 5xx
    REJECTED = "rejected"  # any other 4xx: retrying would not help
    UNUSABLE = "unusable"  # the URL itself cannot be sent to: fix its variable


@dataclass(frozen=True)
class Destination:
    """Where alerts go: `name` is what logs show, never the URL (kept out of the repr too)."""

    name: str  # "slack" or "webhook"
    url: str = field(repr=False)

    @property
    def variable(self) -> str:
        return VARIABLES.get(self.name, self.name)

    def body(self, alert: dict[str, Any]) -> dict[str, Any]:
        if self.name == "slack":
            icon = KIND_ICONS.get(alert["state"], ":information_source:")
            return {"text": f"{icon} {alert['text']}"}
        return alert


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    detail: str  # e.g. "HTTP 503 Service Unavailable", "timed out": safe to log
    retry_after: float | None = None  # seconds the receiver asked us to wait (429, 503)


def url_problem(url: str) -> str | None:
    """Why `url` cannot be sent to, in words that quote none of it; None when it can."""
    if _NOT_IN_URLS.search(url):
        return "it contains a space or a control character"
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
    except ValueError:
        return "it is not a URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "it does not start with https://"
    if not parts.hostname:
        return "it names no host"
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        return "its host name is not valid"
    return None


def send(destination: Destination, alert: dict[str, Any], timeout: float = TIMEOUT_SECONDS) -> Attempt:
    """POST `alert` to `destination` once. Never raises: every failure is an Outcome."""
    problem = url_problem(destination.url)
    if problem is not None:
        return Attempt(Outcome.UNUSABLE, problem)
    try:
        request = urllib.request.Request(
            destination.url,
            data=json.dumps(destination.body(alert)).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "crypto_assets-alerts"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return Attempt(Outcome.DELIVERED, f"HTTP {response.status}")
    except urllib.error.HTTPError as error:  # the server's reason phrase is not ours to log
        code = error.code
        wait = retry_after(error.headers.get("Retry-After")) if code in (429, 503) else None
        retry = code == 429 or code >= 500
        return Attempt(Outcome.RETRY if retry else Outcome.REJECTED, _status(code), wait)
    except urllib.error.URLError as error:  # refused, DNS, TLS
        return Attempt(Outcome.RETRY, f"not reachable ({_reason(error.reason)})")
    except OSError as error:  # incl. TimeoutError, a connection reset mid-answer
        return Attempt(Outcome.RETRY, f"not reachable ({_reason(error)})")
    except ValueError as error:  # incl. http.client.InvalidURL, whose message quotes the URL
        return Attempt(Outcome.UNUSABLE, f"the URL was refused ({type(error).__name__})")
    except Exception as error:  # a malformed answer: its message may quote the URL
        return Attempt(Outcome.RETRY, f"failed ({type(error).__name__})")


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """The seconds a `Retry-After` header asks for (a number or an HTTP date), at most an hour;
    None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_SECONDS)


def retry_delay(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt."""
    return min(FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1), MAX_RETRY_SECONDS)


def _status(code: int) -> str:
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return type(reason).__name__
