"""The demo's htmx page in a real browser: no JavaScript of its own, the server's HTML
fragments swapped in by htmx's SSE extension (vendored, no CDN)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect

from runtime.demo import Message
from runtime.users import User
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD
from tests.support import TIMEOUT, LiveServer


def test_the_htmx_page_follows_every_change(
    server: LiveServer, users: dict[str, User], new_page: Callable[..., Page]
) -> None:
    old = Message.create(text="already here", author=users["bob"])
    requests: list[str] = []
    alice, visitor = new_page(), new_page()
    for page in (alice, visitor):
        page.on("request", lambda request: requests.append(request.url))
    log_in(alice, server.url, "alice", next_path="/htmx")
    visitor.goto(f"{server.url}/htmx")
    for page in (alice, visitor):
        expect(page.locator("#live-state")).to_have_attribute("data-live", "live")
        expect(page.locator("#htmx-messages li .text")).to_have_text(["already here"])

    alice.fill("#htmx-post-form input[name=text]", "<b>hello</b> from htmx")
    alice.press("#htmx-post-form input[name=text]", "Enter")
    for page in (alice, visitor):  # newest first, the markup shown as text
        expect(page.locator("#htmx-messages li .text")).to_have_text(
            ["<b>hello</b> from htmx", "already here"]
        )
    expect(alice.locator("#htmx-post-form input[name=text]")).to_have_value("")
    visitor.evaluate(f"document.getElementById('message-{old.id}').dataset.mark = 'kept'")

    posted = Message.get(Message.text == "<b>hello</b> from htmx")
    posted.text = "edited in place"
    posted.save()
    expect(visitor.locator(f"#message-{posted.id} .text")).to_have_text("edited in place")
    # Only that record's element was swapped: the other is the same element still.
    expect(visitor.locator(f"#message-{old.id}")).to_have_attribute("data-mark", "kept")

    old.delete_instance()
    expect(visitor.locator("#htmx-messages li .text")).to_have_text(["edited in place"])

    # A second stream on the page, added by htmx later, keeps its own state: notes are
    # their owners', refused to a visitor; the messages' stream stays live.
    visitor.evaluate(NOTES_STREAM)
    notes = visitor.locator("#notes-stream")
    expect(notes).to_have_attribute("data-live", "not-live")
    expect(visitor.locator("#notes-state")).to_have_text(re.compile(r"^notes refused: \S"))
    expect(visitor.locator("#notes-list")).to_have_attribute("data-stale", "forbidden")
    expect(visitor.locator("[sse-connect*=messages]")).to_have_attribute("data-live", "live")
    expect(visitor.locator("#live-state")).to_have_text("live (htmx, sse)")
    expect(visitor.locator("#htmx-messages")).not_to_have_attribute("data-stale", re.compile(".*"))
    assert all(url.startswith(server.url) for url in requests)  # htmx from us, no CDN


NOTES_STREAM = """() => {
  const box = document.createElement("div");
  box.innerHTML = `<p id="notes-state"></p><ul id="notes-list"></ul>
    <div id="notes-stream" hx-ext="sse" data-live-status="#notes-state"
         data-live-list="#notes-list" data-live-text-not-live="notes refused: {reason}"
         sse-connect="/realtime/subscribe?pattern=notes&amp;snapshot=1&amp;format=html">
      <div hidden sse-swap="notes:snapshot" hx-target="#notes-list"></div>
    </div>`;
  document.querySelector("main").append(box);
  htmx.process(box);
}"""


def test_a_record_cannot_forge_another_users_list(
    server: LiveServer, users: dict[str, User], new_page: Callable[..., Page]
) -> None:
    """Issue 15, item 2: a message posted through the API with bare CRs in its text was
    read by the browser as a second SSE message, `messages:snapshot`, and every viewer's
    list was replaced by what its author wrote."""
    old = Message.create(text="already here", author=users["bob"])
    bob, visitor = new_page(), new_page()
    log_in(bob, server.url, "bob", next_path="/htmx")
    visitor.goto(f"{server.url}/htmx")
    for page in (bob, visitor):
        expect(page.locator("#live-state")).to_have_attribute("data-live", "live")
        expect(page.locator("#htmx-messages li .text")).to_have_text(["already here"])
        page.evaluate(f"document.getElementById('message-{old.id}').dataset.mark = 'kept'")

    forgery = "hi\r\rid: forged-1\revent: messages:snapshot\rdata: LIST WIPED BY ALICE"
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as alice:
        login = {"username": "alice", "password": PASSWORD}
        assert alice.post("/auth/login", json=login).status_code == 200
        for text in (forgery, "and after it"):
            posted = alice.post("/api/collections/messages/records", json={"text": text})
            assert posted.status_code == 201, posted.text

    # Its text as a browser shows it: each line break, and the spaces around, one space.
    shown = re.compile(
        r"^hi\s+id: forged-1\s+event: messages:snapshot\s+data: LIST WIPED BY ALICE$"
    )
    for page in (bob, visitor):
        # Once the message after it is in, everything before it has been swapped: the
        # forged text is one message's text, and the list is still the whole list.
        expect(page.locator("#htmx-messages li .text")).to_have_text(
            ["and after it", shown, "already here"]
        )
        expect(page.locator(f"#message-{old.id}")).to_have_attribute("data-mark", "kept")


def test_the_htmx_page_tells_that_its_session_ended(
    server: LiveServer, users: dict[str, User], new_page: Callable[..., Page]
) -> None:
    Message.create(text="already here", author=users["bob"])
    alice = new_page()
    log_in(alice, server.url, "alice", next_path="/htmx")
    badge, items = alice.locator("#live-state"), alice.locator("#htmx-messages")
    expect(badge).to_have_attribute("data-live", "live")
    expect(badge).to_have_text("live (htmx, sse)")
    expect(items.locator("li .text")).to_have_text(["already here"])
    expect(items).not_to_have_attribute("data-stale", re.compile(".*"))

    other_tab = alice.context.new_page()
    other_tab.goto(f"{server.url}/htmx")
    other_tab.get_by_role("button", name="Log out").click()
    other_tab.wait_for_url(re.compile(r"/login"))
    # Messages are public: the stream comes back as a visitor's, but the page was Alice's.
    expect(badge).to_have_text("signed out — reload to sign in")
    expect(badge).to_have_attribute("data-live", "signed-out")
    expect(items).to_have_attribute("data-stale", "session_ended")
    alice.reload()
    expect(badge).to_have_text("live (htmx, sse)")
    expect(items).not_to_have_attribute("data-stale", re.compile(".*"))
