"""The demo's pages show each message's author from `expand=author` (no copy in the
message): the JS page (liveList) and the htmx page (fragments), in Chromium; a renamed
user shows under the new name with the next event of their message."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from runtime.demo import Message
from runtime.users import User
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
