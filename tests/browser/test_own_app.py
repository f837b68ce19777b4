"""client.md's server-rendered page in README's app of your own, served with `--app`
and `app.demo` off, in a real browser: the live list follows every change."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in
from tests.conftest import PASSWORD
from tests.docs_apps import my_app
from tests.support import TIMEOUT, ServerProcess

# The page is the docs' own, with no hook for tests: record what its WebSocket receives.
RECORD_FRAMES = """
window.framesReceived = [];
window.WebSocket = class extends window.WebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (event) => window.framesReceived.push(String(event.data)));
  }
};
"""


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    config = my_app(tmp_path)
    with ServerProcess(config, {"RUNTIME_APP_DEMO": "false"}, app="myapp:app") as server:
        yield server


def test_the_live_list_of_client_md(
    own_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    with httpx.Client(base_url=own_server.url, timeout=TIMEOUT) as ann:
        assert ann.post("/auth/login", json={"username": "ann", "password": PASSWORD}).is_success
        records = "/api/collections/posts/records"
        rendered = ann.post(records, json={"title": "rendered by the server"}).json()
        page = new_page()
        page.add_init_script(RECORD_FRAMES)
        log_in(page, own_server.url, "ann", next_path="/")
        items = page.locator("#posts li")
        expect(items).to_have_text(["rendered by the server"])
        page.wait_for_function(  # the page's subscription is live
            """() => window.framesReceived.some((frame) => frame.includes('"subscribed"'))"""
        )
        live = ann.post(records, json={"title": "live"}).json()
        expect(items).to_have_text(["rendered by the server", "live"])
        expect(page.locator(f'#posts li[data-id="{live["id"]}"]')).to_have_text("live")
        ann.patch(f"{records}/{rendered['id']}", json={"title": "edited"})
        ann.patch(f"{records}/{live['id']}", json={"title": "live, edited"})
        expect(items).to_have_text(["edited", "live, edited"])
        ann.delete(f"{records}/{rendered['id']}")
        expect(items).to_have_text(["live, edited"])
        ann.delete(f"{records}/{live['id']}")
        expect(items).to_have_count(0)
