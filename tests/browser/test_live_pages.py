"""The demo pages live in a real browser: two tabs, SSE without WebSocket, a server
restart, and errors reported to the caller."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import httpx
from playwright.sync_api import Page, expect
from quart import Quart

from runtime.demo import Message, Note
from runtime.users import User
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD
from tests.support import TIMEOUT, LiveServer

NewPage = Callable[..., Page]


def texts(page: Page) -> list[str]:
    return page.locator("#messages li .text").all_inner_texts()


def wait_live(page: Page, transport: str = "websocket") -> None:
    state = page.locator("#live-state")
    expect(state).to_have_attribute("data-state", "connected")
    expect(state).to_have_attribute("data-transport", transport)


@contextlib.contextmanager
def api_client(server: LiveServer, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as http:
        response = http.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200
        yield http


def test_two_tabs_see_each_others_changes(server: LiveServer, new_page: NewPage) -> None:
    alice, visitor = new_page(), new_page()
    log_in(alice, server.url, "alice")
    visitor.goto(f"{server.url}/messages")
    wait_live(alice)
    wait_live(visitor)
    alice.fill("input[name=text]", "hello from alice")
    alice.press("input[name=text]", "Enter")
    expect(visitor.locator("#messages li .text")).to_have_text(["hello from alice"])
    expect(alice.locator("#messages li .text")).to_have_text(["hello from alice"])
    with api_client(server, "bob") as bob:
        created = bob.post("/api/collections/messages/records", json={"text": "from bob"}).json()
        expect(visitor.locator("#messages li .text")).to_have_text(["hello from alice", "from bob"])
        bob.patch(
            f"/api/collections/messages/records/{created['id']}", json={"text": "bob, edited"}
        )
        expect(alice.locator("#messages li .text")).to_have_text(
            ["hello from alice", "bob, edited"]
        )
        bob.delete(f"/api/collections/messages/records/{created['id']}")
    expect(alice.locator("#messages li .text")).to_have_text(["hello from alice"])
    expect(visitor.locator("#messages li .text")).to_have_text(["hello from alice"])
    # Alice edits her own message in place.
    alice.locator("#messages li", has_text="hello from alice").get_by_text("edit").click()
    alice.fill("#messages input.edit", "hello, edited")
    alice.press("#messages input.edit", "Enter")
    expect(visitor.locator("#messages li .text")).to_have_text(["hello, edited"])
    expect(visitor.locator("#messages li .author")).to_have_text(["alice"])


def test_without_websocket_the_sse_path_delivers(
    server: LiveServer, new_page: NewPage, users: dict[str, User]
) -> None:
    page = new_page(without_websocket=True)
    page.goto(f"{server.url}/messages")
    wait_live(page, transport="sse")
    message = Message.create(text="over sse", author=users["alice"])
    expect(page.locator("#messages li .text")).to_have_text(["over sse"])
    message.text = "over sse, edited"
    message.save()
    expect(page.locator("#messages li .text")).to_have_text(["over sse, edited"])
    message.delete_instance()
    expect(page.locator("#messages li.empty")).to_have_count(1)


def test_notes_page_is_live_for_the_owner_only(
    server: LiveServer, new_page: NewPage, users: dict[str, User]
) -> None:
    alice, bob = new_page(), new_page()
    log_in(alice, server.url, "alice", "/notes")
    log_in(bob, server.url, "bob", "/notes")
    wait_live(alice)
    wait_live(bob)
    alice.fill("input[name=title]", "alice's plan")
    alice.click("#note-form button[type=submit]")
    expect(alice.locator("#notes li .title")).to_have_text(["alice's plan"])
    Note.create(title="bob's list", owner=users["bob"])
    expect(bob.locator("#notes li .title")).to_have_text(["bob's list"])
    expect(alice.locator("#notes li .title")).to_have_text(["alice's plan"])


def test_a_forbidden_subscription_is_reported(server: LiveServer, new_page: NewPage) -> None:
    page = new_page()
    page.goto(f"{server.url}/messages")
    wait_live(page)
    outcome = page.evaluate(
        """async () => {
            const unsubscribe = window.demoClient.subscribe("notes", () => {});
            try { await unsubscribe.ready; return "subscribed"; }
            catch (error) { return error.code; }
        }"""
    )
    assert outcome == "forbidden"


def test_the_page_recovers_across_a_server_restart(
    app: Quart, users: dict[str, User], new_page: NewPage
) -> None:
    alice = users["alice"]
    Message.create(text="before", author=alice)
    first = LiveServer(app)
    first.start()
    port = first.port
    page = new_page()
    try:
        page.goto(f"{first.url}/messages")
        wait_live(page)
        expect(page.locator("#messages li .text")).to_have_text(["before"])
    finally:
        first.stop()
    expect(page.locator("#live-state")).not_to_have_attribute("data-state", "connected")
    # Changes while the server is down: history cannot cover them (a new run).
    Message.create(text="while away", author=alice)
    Message.get(Message.text == "before").delete_instance()
    with LiveServer(app, port=port):
        wait_live(page)
        expect(page.locator("#messages li .text")).to_have_text(["while away"])
        Message.create(text="after", author=alice)
        expect(page.locator("#messages li .text")).to_have_text(["while away", "after"])


def test_a_dropped_connection_resumes_from_history(
    server: LiveServer, new_page: NewPage, users: dict[str, User]
) -> None:
    alice = users["alice"]
    page = new_page()
    page.goto(f"{server.url}/messages")
    wait_live(page)
    Message.create(text="one", author=alice)
    expect(page.locator("#messages li .text")).to_have_text(["one"])
    # The server drops every connection (1001); the events published before the page
    # is back must be replayed from history.
    server.call(lambda: server.broker.lifecycle.close_all(1001, "test"))
    Message.create(text="two", author=alice)
    Message.create(text="three", author=alice)
    wait_live(page)
    expect(page.locator("#messages li .text")).to_have_text(["one", "two", "three"])


def test_an_edit_in_progress_survives_other_changes(
    server: LiveServer, new_page: NewPage, users: dict[str, User]
) -> None:
    mine = Message.create(text="mine", author=users["alice"])
    alice = new_page()
    log_in(alice, server.url, "alice")
    wait_live(alice)
    alice.locator("#messages li", has_text="mine").get_by_text("edit").click()
    alice.fill("#messages input.edit", "half-typed")
    with api_client(server, "bob") as bob:
        theirs = bob.post("/api/collections/messages/records", json={"text": "bob's"}).json()
        expect(alice.locator("#messages li .text")).to_have_text(["bob's"])  # mine is an input
        bob.patch(f"/api/collections/messages/records/{theirs['id']}", json={"text": "bob's!"})
        expect(alice.locator("#messages li .text")).to_have_text(["bob's!"])
    # Someone else's changes touched only their own element: the edit is as it was.
    expect(alice.locator("#messages input.edit")).to_have_value("half-typed")
    expect(alice.locator("#messages input.edit")).to_be_focused()
    alice.press("#messages input.edit", "Enter")
    expect(alice.locator("#messages li .text")).to_have_text(["half-typed", "bob's!"])
    assert Message.get_by_id(mine.id).text == "half-typed"


def test_a_refused_post_is_shown_and_the_form_is_off_while_offline(
    server: LiveServer, new_page: NewPage
) -> None:
    alice = new_page()
    log_in(alice, server.url, "alice")
    wait_live(alice)
    text = alice.locator("#post-form input[name=text]")
    text.evaluate("(input) => input.removeAttribute('maxlength')")  # past the page's limit
    text.fill("x" * 600)
    text.press("Enter")
    error = alice.locator("#post-form + p.error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("text")  # the API's message names the field
    expect(text).to_have_value("x" * 600)  # kept, to be fixed
    text.fill("short enough")
    text.press("Enter")
    expect(alice.locator("#messages li .text")).to_have_text(["short enough"])
    expect(error).to_be_hidden()

    alice.evaluate("window.demoClient.close()")  # offline: what it posts would not show
    expect(text).to_be_disabled()
    expect(alice.locator("#post-form button[type=submit]")).to_be_disabled()
    alice.evaluate("window.demoClient.connect()")
    expect(text).to_be_enabled()
