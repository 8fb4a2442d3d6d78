"""A local cloud with its web console, and a headless Chromium driving it.

The browser is Debian's ``chromium`` (``make test`` installs it), driven by
Playwright without Playwright's own browser download. A missing browser fails
the tests with the command that installs it; it never skips them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from localcloud.cloud import LocalCloud
from localcloud.console.server import ConsoleServer
from ops.target import Target

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "console-screenshots"
# Without these, Chromium tries to reach Google's services at start, which this
# machine refuses, many connections at a time.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    # moto in its own process: this cloud's queues and tables hold only this test's data.
    with LocalCloud(aws_port=0, api_port=0, moto_process=True) as running:
        yield running


@pytest.fixture
def console_url(cloud: LocalCloud) -> Iterator[str]:
    server = ConsoleServer(Target(stage="local", clients=cloud.clients), cloud.api_endpoint, 0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


class PageErrors(list):
    """Uncaught exceptions and console errors of the page, in order."""


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, PageErrors]]:
    context = browser.new_context(viewport={"width": 1700, "height": 900})
    opened = context.new_page()
    errors = PageErrors()
    opened.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    # An HTTP error answer is logged by Chromium as "Failed to load resource"; that is
    # the page being told no, not a script error.
    opened.on(
        "console",
        lambda m: (
            errors.append(f"console: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    opened.set_default_timeout(60_000)
    try:
        yield opened, errors
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
