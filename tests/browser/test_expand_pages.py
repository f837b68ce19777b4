"""The demo's pages show each message's author from `expand=author` (no copy in the
message): the JS page (liveList) and the htmx page (fragments), in Chromium; a renamed
user shows under the new name with the next event of their message."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from runtime.demo import Message
from runtime.users import User
from tests.browser.conftest import log_in
from tests.expand_models import Project, Task
from tests.support import LiveServer


def test_a_renamed_author_shows_renamed_on_both_pages(
    server: LiveServer, users: dict[str, User], new_page: Callable[..., Page]
) -> None:
    bob = users["bob"]
    old = Message.create(text="in the snapshot", author=bob)
    js, htmx = new_page(), new_page()
    js.goto(f"{server.url}/messages")
    htmx.goto(f"{server.url}/htmx")
    expect(js.locator("#live-state")).to_have_attribute("data-state", "connected")
    expect(htmx.locator("#live-state")).to_have_attribute("data-live", "live")
    expect(htmx.locator(f"#message-{old.id} .author")).to_have_text("bob")

    new = Message.create(text="live", author=bob)
    expect(js.locator("#messages li .author")).to_have_text(["bob", "bob"])
    expect(htmx.locator(f"#message-{new.id} .author")).to_have_text("bob")

    User.update(username="robert").where(User.id == bob.id).execute()
    new.text = "edited"
    new.save()  # its event reads the author as they are now
    expect(js.locator("#messages li .text")).to_have_text(["in the snapshot", "edited"])
    expect(js.locator("#messages li .author")).to_have_text(["bob", "robert"])
    expect(htmx.locator(f"#message-{new.id} .author")).to_have_text("robert")
    js.reload()  # a read of the page: every message as its author is named now
    expect(js.locator("#messages li .author")).to_have_text(["robert", "robert"])


UNION = """async () => {
    const { RealtimeClient } = await import("/realtime/client.js");
    const client = new RealtimeClient();
    window.client = client;
    window.seen = [];
    const names = (event) => Object.keys(event.record.expand || {}).sort();
    const keep = (name) => (event) => window.seen.push([name, names(event)]);
    await client.subscribe("test_expand_tasks", keep("a"), { expand: ["author"] }).ready;
    window.second = client.subscribe("test_expand_tasks", keep("b"), { expand: "project, author" });
    await window.second.ready;
}"""


@pytest.mark.parametrize("without_websocket", [False, True], ids=["websocket", "sse"])
def test_callers_of_one_pattern_get_the_union_of_their_expands(
    server: LiveServer,
    users: dict[str, User],
    new_page: Callable[..., Page],
    without_websocket: bool,
) -> None:
    alice = users["alice"]
    page = new_page(without_websocket=without_websocket)
    log_in(page, server.url, "alice")
    page.evaluate(UNION)
    project = Project.create(name="p", owner=alice)
    Task.create(title="both", author=alice, project=project)
    both = ["author", "project"]
    page.wait_for_function("window.seen.length === 2")
    assert page.evaluate("window.seen") == [["a", both], ["b", both]]
    page.evaluate("window.second()")  # the other caller's expand alone is asked again
    page.wait_for_function("window.client._requests.size === 0")
    Task.create(title="one", author=alice, project=project)
    page.wait_for_function("window.seen.length === 3")
    assert page.evaluate("window.seen")[2] == ["a", ["author"]]
