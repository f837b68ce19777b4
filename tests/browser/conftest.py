"""A real browser: Debian's chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import PASSWORD
from tests.support import TIMEOUT

# Flags this machine needs: no sandbox as root, and no background network calls
# (the network is closed; chromium would retry them forever).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return os.environ.get("RUNTIME_TESTS_CHROMIUM") or shutil.which("chromium")


# Module-scoped: Playwright's sync API keeps an event loop current in this thread while
# it runs, which asyncio tests after it must not inherit.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[object]:
    contexts = []

    def make(*, without_websocket: bool = False) -> Page:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT * 1000)
        if without_websocket:
            context.add_init_script("window.WebSocket = undefined;")
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    errors: list[str] = []
    yield make
    for context in contexts:
        context.close()
    assert errors == [], errors


def log_in(page: Page, base_url: str, username: str, next_path: str = "/messages") -> None:
    page.goto(f"{base_url}/login?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{next_path}")
