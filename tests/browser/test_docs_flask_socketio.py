"""docs/flask-socketio.md's converted chat, laid out and served as the doc says, in
Chromium: two users see each other, chat, get refusals, and leave; over WebSocket, and
again over SSE (WebSocket removed from the pages)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import log_in
from tests.docs_apps import blocks, commands, create_users
from tests.support import ServerProcess

DOC = "docs/flask-socketio.md"
SECTION = "The chat, converted"


def chat_app(folder: Path) -> Path:
    """The converted chat in `folder`, with the users the doc's commands create; returns
    its configuration."""
    (chat,) = blocks(DOC, "python", section=SECTION)
    (page,) = blocks(DOC, "html", section=SECTION)
    (folder / "chat.py").write_text(chat)
    (folder / "templates").mkdir()
    (folder / "templates" / "chat.html").write_text(page)
    config = folder / "config.toml"
    config.write_text('[app]\nlog_level = "warning"\n')
    *user_commands, serve = commands(DOC, section=SECTION)
    assert user_commands == [
        ["python", "-m", "runtime", "create-user", "ann"],
        ["python", "-m", "runtime", "create-user", "bob"],
    ]
    assert serve == ["python", "-m", "runtime", "serve", "--app", "chat:app"]
    create_users(folder, user_commands)
    return config


def test_the_before_code_is_marked_as_flask_socketio() -> None:
    """The Flask-SocketIO code is there, and is not taken for the converted app."""
    assert len(blocks(DOC, "python flask-socketio")) == 1
    assert len(blocks(DOC, "html flask-socketio")) == 1
    assert "flask_socketio" not in "".join(blocks(DOC, "python"))
    assert "socket.io" not in "".join(blocks(DOC, "html"))


@pytest.fixture
def chat_server(tmp_path: Path) -> Iterator[ServerProcess]:
    config = chat_app(tmp_path)
    with ServerProcess(config, {"RUNTIME_APP_DEMO": "false"}, app="chat:app") as server:
        yield server


def transports_used(page: Page) -> dict[str, list[str]]:
    """The page's realtime connections, by kind, as they open."""
    used: dict[str, list[str]] = {"websocket": [], "sse": []}

    def on_request(request: Request) -> None:
        if request.method == "GET" and "/realtime/subscribe" in request.url:
            used["sse"].append(request.url)  # WebSocket upgrades are not requests here

    page.on("websocket", lambda ws: used["websocket"].append(ws.url))
    page.on("request", on_request)
    return used


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_the_converted_chat(
    chat_server: ServerProcess, new_page: Callable[..., Page], transport: str
) -> None:
    url = chat_server.url
    pages = {name: new_page(without_websocket=transport == "sse") for name in ("ann", "bob")}
    used = {name: transports_used(page) for name, page in pages.items()}
    for name, page in pages.items():
        log_in(page, url, name, next_path="/")
    ann, bob = pages["ann"], pages["bob"]

    # Presence: each sees both (their own join, and the other's, by list or by event).
    for page in (ann, bob):
        expect(page.locator("#here li")).to_have_text(["ann", "bob"])
    for name in pages:
        other = "sse" if transport == "websocket" else "websocket"
        assert used[name][transport] and not used[name][other], used[name]

    # A message said by one appears for both; the ack clears the sender's box.
    text = ann.locator("#say input[name=text]")
    text.fill("hello bob")
    ann.click("#say button[type=submit]")
    for page in (ann, bob):
        expect(page.locator("#messages li")).to_have_text(["ann: hello bob"])
    expect(text).to_have_value("")
    expect(ann.get_by_role("alert")).to_be_hidden()

    # Refusals show on the sender's page only, and nothing is sent to the other.
    box = bob.locator("#say input[name=text]")
    box.fill("   ")
    bob.click("#say button[type=submit]")
    expect(bob.get_by_role("alert")).to_have_text("Say something.")
    expect(box).to_have_value("   ")  # not acknowledged: kept for the user to fix
    box.fill("x" * 501)
    bob.click("#say button[type=submit]")
    expect(bob.get_by_role("alert")).to_have_text("At most 500 characters.")
    box.fill("hi ann")
    bob.click("#say button[type=submit]")
    expect(bob.get_by_role("alert")).to_be_hidden()
    expect(box).to_have_value("")
    for page in (ann, bob):  # in order, and nothing between the two
        expect(page.locator("#messages li")).to_have_text(["ann: hello bob", "bob: hi ann"])
    expect(ann.get_by_role("alert")).to_be_hidden()

    # Ann leaves: her browser closes, and Bob's list drops her.
    ann.context.close()
    expect(bob.locator("#here li")).to_have_text(["bob"])
