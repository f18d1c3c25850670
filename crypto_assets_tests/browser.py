"""Headless Chromium for the end-to-end test: Debian's /usr/bin/chromium driven by Playwright, a page
that records what counts as an error, and a visit that saves a screenshot.

This machine has no internet: Chromium's background services (component updates, sync, QUIC
probes, ...) are switched off by flags, and every request a page makes to a host other than
loopback is aborted before it leaves, so nothing waits on a DNS lookup that cannot answer.

What counts as an error (`Page.errors`), since the visit began:
- an uncaught exception in the page (`pageerror`);
- a console message of type `error`, except the two kinds below;
- a request to the apps under test (loopback) that failed, or that they answered with a status
  >= 400, except the answers in EXPECTED_ANSWERS.
What does not (kept in `Page.ignored`, printed with the test's output): a "Failed to load resource"
console message about a URL outside loopback (the aborted requests above), and the console line
Chromium adds for an answer in EXPECTED_ANSWERS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: (path, status) answers that are not errors, and why
EXPECTED_ANSWERS = {
    ("/ajax-api/2.0/mlflow/users/current", 404): "MLflow's UI asks who is logged in; a server "
    "without its basic-auth app (compose runs it without) answers 404",
}
#: text a Dagster or MLflow error page shows
ERROR_TEXTS = ("Unexpected error", "Page not found", "Something went wrong", "PythonError")
FAILED_LOAD = "Failed to load resource"


def is_loopback(url: str) -> bool:
    scheme, host = urlsplit(url).scheme, urlsplit(url).hostname
    return scheme in {"data", "blob", "about"} or host in LOOPBACK


def expected_answer(url: str, status: int) -> str | None:
    """Why the answer `status` to `url` is not an error, or None when it is."""
    return EXPECTED_ANSWERS.get((urlsplit(url).path, status)) if is_loopback(url) else None


@dataclass
class Page:
    """A Playwright page and what it reported since the last `visit` began."""

    page: Any
    errors: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    _expected_urls: set[str] = field(default_factory=set)

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        source = (message.location or {}).get("url", "")
        text = f"console: {message.text} ({source})"
        failed_load = message.text.startswith(FAILED_LOAD)
        if failed_load and (not is_loopback(source) or source in self._expected_urls):
            self.ignored.append(text)
        else:
            self.errors.append(text)

    def on_response(self, response: Any) -> None:
        if response.status < 400 or not is_loopback(response.url):
            return
        reason = expected_answer(response.url, response.status)
        if reason is None:
            self.errors.append(f"HTTP {response.status}: {response.request.method} {response.url}")
        else:
            self._expected_urls.add(response.url)
            self.ignored.append(f"HTTP {response.status} {response.url}: {reason}")

    def on_request_failed(self, request: Any) -> None:
        if is_loopback(request.url):
            self.errors.append(f"request failed: {request.method} {request.url}: {request.failure}")


@contextmanager
def chromium_page(viewport: tuple[int, int] = (1600, 1000)) -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.route(
                "**/*",
                lambda route: route.continue_() if is_loopback(route.request.url) else route.abort(),
            )
            page = Page(context.new_page())
            page.page.set_default_timeout(30_000)
            page.page.on("console", page.on_console)
            page.page.on("pageerror", lambda error: page.errors.append(f"page error: {error}"))
            page.page.on("response", page.on_response)
            page.page.on("requestfailed", page.on_request_failed)
            yield page
        finally:
            browser.close()


def visit(
    page: Page,
    url: str,
    screenshot: Path,
    texts: list[str],
    *,
    then: Callable[[Any], None] | None = None,
    settle: bool = True,
) -> str:
    """Open `url`, wait until every one of `texts` shows (exact text), do `then` (e.g. expand or
    close something), let the page settle, and save a screenshot (also when a step failed); then
    fail on an error page or an error counted since the visit began. The page's text.

    `settle`: wait until the network is idle; pages that keep polling wait a fixed moment instead
    for late answers and console messages."""
    page.errors.clear()
    try:
        page.page.goto(url, wait_until="domcontentloaded")
        for text in texts:
            page.page.get_by_text(text, exact=True).first.wait_for(state="visible")
        if then is not None:
            then(page.page)
        if settle:
            page.page.wait_for_load_state("networkidle")
        else:
            page.page.wait_for_timeout(2000)
    finally:
        page.page.screenshot(path=str(screenshot), full_page=True)
    body = page.page.inner_text("body")
    shown = [text for text in ERROR_TEXTS if text in body]
    assert not shown, f"{url} shows {shown} (screenshot {screenshot})"
    assert not page.errors, f"{url}: {page.errors} (screenshot {screenshot})"
    return body
