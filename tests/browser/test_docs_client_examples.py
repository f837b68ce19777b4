"""The examples of docs/client.md, run as written in Chromium against real servers: the
demo app (messages, notes), README's app (posts, with client.md's "typing" route) and
docs/events.md's client events app. The docs say that each `js` snippet runs in a
module script after the PRELUDE below; the test gives it a page with the elements its
prose names, served on the server's own origin."""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect
from quart import Quart, current_app, render_template_string

from runtime.demo import Message, Note
from runtime.users import User
from tests.browser.conftest import log_in
from tests.browser.test_own_app import RECORD_FRAMES
from tests.conftest import PASSWORD
from tests.docs_apps import blocks, client_events_server, my_app
from tests.support import TIMEOUT, LiveServer, ServerProcess

NewPage = Callable[..., Page]

PRELUDE = (
    'import { RealtimeClient } from "/realtime/client.js";\nconst client = new RealtimeClient();\n'
)

# What the examples write to the console, kept for the test to wait on.
RECORD_CONSOLE = """
window.logged = [];
for (const level of ["log", "warn"]) {
  const original = console[level];
  console[level] = (...args) => {
    window.logged.push([level, ...args.map((a) => typeof a === "string" ? a : JSON.stringify(a))]
      .join(" "));
    original.apply(console, args);
  };
}
"""


def example(block: str, markup: str = "", after: str = "") -> str:
    """A page of `markup` and a module script of the prelude and `block`. It is served
    by the server itself: Chromium blocks a WebSocket to 127.0.0.1 from a page that
    Playwright made up (its local network access checks)."""
    return (
        f'<!doctype html>\n<meta charset="utf-8">\n{markup}\n'
        f'<script type="module">\n{PRELUDE}{block}{after}</script>\n'
    )


def wait_subscribed(page: Page, pattern: str) -> None:
    """Until the page's WebSocket (RECORD_FRAMES) got the `subscribed` reply for `pattern`."""
    page.wait_for_function(
        """(pattern) => window.framesReceived.some((frame) =>
            frame.includes('"subscribed"') && frame.includes(JSON.stringify(pattern)))""",
        arg=pattern,
    )


# The demo app, with one page that renders a template the test chooses (for the blocks
# that use Jinja).
@pytest.fixture
def app(app: Quart) -> Quart:
    @app.get("/example")
    async def page_example() -> str:
        return str(current_app.config["EXAMPLE"])

    @app.get("/example/template")
    async def template_example() -> str:
        return await render_template_string(current_app.config["EXAMPLE"])

    return app


@pytest.fixture
def realtime_settings() -> dict[str, object]:
    return {"snapshot_limit": 2}  # "The same by hand" shows its notice past it


def test_including_it_as_a_module_and_as_a_global(
    app: Quart, server: LiveServer, users: dict[str, User], new_page: NewPage
) -> None:
    as_module, as_global = blocks("docs/client.md", "html", section="Including it")
    page = new_page()
    page.add_init_script(RECORD_FRAMES + RECORD_CONSOLE)
    app.config["EXAMPLE"] = as_module
    page.goto(f"{server.url}/example/template")
    wait_subscribed(page, "messages")
    Message.create(text="hello", author=users["alice"])
    page.wait_for_function("window.logged.some((line) => line.startsWith('log create '))")
    (line,) = [line for line in page.evaluate("window.logged") if line.startswith("log create")]
    assert '"text":"hello"' in line

    page = new_page()
    page.add_init_script(RECORD_FRAMES)
    app.config["EXAMPLE"] = as_global
    page.goto(f"{server.url}/example/template")
    page.wait_for_function(  # the global's client got connected
        "window.framesReceived.some((frame) => frame.includes('\"connected\"'))"
    )
    assert page.evaluate("typeof window.RealtimeClient") == "function"


def test_the_live_list_by_hand(
    server: LiveServer, users: dict[str, User], new_page: NewPage
) -> None:
    (by_hand,) = blocks(
        "docs/client.md", "js", section="A live list: `client.liveList(pattern, options)`"
    )
    alice = users["alice"]
    for text in ("first", "second", "third"):
        Message.create(text=text, author=alice)
    page = new_page()
    markup = '<ul id="messages"></ul><p id="notice"></p>'
    server.app.config["EXAMPLE"] = example(by_hand, markup)
    page.goto(f"{server.url}/example")
    items = page.locator("#messages li")
    expect(items).to_have_text(["second", "third"])  # the newest two (snapshot_limit = 2)
    expect(page.locator("#notice")).to_have_text("Showing the newest only.")
    fourth = Message.create(text="fourth", author=alice)
    expect(items).to_have_text(["second", "third", "fourth"])
    fourth.text = "fourth, edited"
    fourth.save()
    expect(items).to_have_text(["second", "third", "fourth, edited"])
    Message.delete().where(Message.text == "third").execute()
    expect(items).to_have_text(["second", "fourth, edited"])


def test_a_filtered_live_feed(
    server: LiveServer, users: dict[str, User], new_page: NewPage
) -> None:
    (feed,) = blocks("docs/client.md", "js", section="A filtered live feed (a filter expression)")
    alice, june = users["alice"], datetime.datetime(2024, 6, 2)
    Message.create(text="Tea at five", author=alice, created_at=june)
    Message.create(text="tea, too early", author=alice, created_at=datetime.datetime(2024, 5, 2))
    Message.create(text="coffee", author=alice, created_at=june)
    page = new_page()
    page.add_init_script(RECORD_FRAMES)
    server.app.config["EXAMPLE"] = example(feed, '<ul id="tea"></ul>', "window.client = client;\n")
    page.goto(f"{server.url}/example")
    items = page.locator("#tea li")
    expect(items).to_have_text(["Tea at five"])
    Message.create(text="more coffee", author=alice)
    again = Message.create(text="TEA again", author=alice)  # now: after June 2024
    expect(items).to_have_text(["TEA again", "Tea at five"])
    for text in ("coffee again", "tea once more"):  # edited out of the filter, and back in
        again.text = text
        again.save()
    expect(items).to_have_text(["tea once more", "Tea at five"])
    coffee = Message.get(Message.text == "coffee")
    coffee.text = "coffee, then tea"  # an old message edited into the filter
    coffee.save()
    expect(items).to_have_text(["coffee, then tea", "tea once more", "Tea at five"])
    # An expression cannot share a pattern with another filter; a refused one says where.
    refusals = page.evaluate(
        """async () => {
          const reasons = [];
          for (const filter of [{ text: "x" }, "text ~"]) {
            const pattern = typeof filter === "string" ? "messages/1" : "messages";
            try { await client.subscribe(pattern, () => {}, { filter }).ready; }
            catch (error) { reasons.push([error.code, error.frame && error.frame.position]); }
          }
          return reasons;
        }"""
    )
    assert refusals == [["bad_request", None], ["bad_request", 6]]


def pause_clock(page: Page) -> None:
    """Stop the page's timers from firing: pause its clock a moment ahead of its time.
    The page's time goes on while this asks it, and a moment already past is refused
    ("Cannot fast-forward to the past"): then ask again, from the page's new time."""
    for _attempt in range(5):
        try:
            page.clock.pause_at(page.evaluate("Date.now()") / 1000 + 0.05)  # in seconds
            return
        except PlaywrightError as error:
            if "to the past" not in str(error):
                raise
    raise AssertionError("the page's clock could not be paused")


def test_a_page_that_tells_the_truth(
    server: LiveServer, users: dict[str, User], new_page: NewPage
) -> None:
    (block,) = blocks(
        "docs/client.md",
        "js",
        section="A page that tells the truth: connection state, session end, refusals",
    )
    Note.create(title="mine", owner=users["alice"])
    markup = (
        '<span id="live-state"></span><p id="notice"></p><ul id="notes"></ul>'
        '<button id="retry">Retry</button>'
    )
    server.app.config["EXAMPLE"] = example(block, markup)
    page = new_page()
    page.clock.install()  # time flows until the test pauses it
    log_in(page, server.url, "alice")
    page.goto(f"{server.url}/example")
    badge, notes = page.locator("#live-state"), page.locator("#notes")
    expect(badge).to_have_text("live (websocket)")
    expect(badge).to_have_attribute("data-state", "connected")
    expect(notes.locator("li")).to_have_text(["mine"])
    # From now on no timer fires: the client's backoff never ends by itself.
    pause_clock(page)
    page.evaluate("fetch('/auth/logout', { method: 'POST' })")  # as from another tab
    expect(page.locator("#notice")).to_have_text("You were logged out.")
    expect(badge).to_have_text("offline")
    expect(badge).to_have_attribute("data-state", "disconnected")
    page.click("#retry")  # back, as a visitor: connected, but neither signed in nor live
    expect(badge).to_have_text("signed out — reload to sign in")
    expect(badge).to_have_attribute("data-state", "signed-out")
    expect(notes).to_have_attribute("data-stale", "forbidden")
    expect(notes.locator("li")).to_have_text(["mine"])

    visitor = new_page()  # never signed in: the refusal is the news
    visitor.goto(f"{server.url}/example")
    expect(visitor.locator("#live-state")).to_have_text(re.compile(r"^not live: .*notes"))
    expect(visitor.locator("#live-state")).to_have_attribute("data-state", "refused")
    expect(visitor.locator("#notes")).to_have_attribute("data-stale", "forbidden")


def test_sse_with_a_plain_eventsource(
    server: LiveServer, users: dict[str, User], new_page: NewPage
) -> None:
    (plain,) = blocks(
        "docs/client.md", "js", section="SSE with a plain EventSource (no client library)"
    )
    alice = users["alice"]
    page = new_page()
    page.add_init_script(RECORD_CONSOLE)
    log_in(page, server.url, "alice")
    server.app.config["EXAMPLE"] = example(plain)
    page.goto(f"{server.url}/example")
    page.wait_for_function(
        """() => ["log subscribed messages", "log subscribed notes", "log unsubscribed messages"]
            .every((line) => window.logged.includes(line))"""
    )
    Message.create(text="not followed any more", author=alice)
    Note.create(title="mine", owner=alice)
    page.wait_for_function("window.logged.some((line) => line.startsWith('log notes create '))")
    logged = page.evaluate("window.logged")
    assert not any(line.startswith("log messages") for line in logged), logged
    assert not any(line.startswith("warn") for line in logged), logged
    (note,) = [line for line in logged if line.startswith("log notes create ")]
    assert '"title":"mine"' in note

    # A visitor's page: its POST carries the stream's key, which its stream needs.
    page = new_page()
    page.add_init_script(RECORD_CONSOLE)
    page.goto(f"{server.url}/example")
    page.wait_for_function(
        """() => ["log subscribed messages", "log unsubscribed messages"]
            .every((line) => window.logged.includes(line))"""
    )
    # notes are not for visitors: that item's result is an error, the POST went through
    assert any(line.startswith("log error") for line in page.evaluate("window.logged"))
    assert not any(line.startswith("warn") for line in page.evaluate("window.logged"))

    # The stream is gone by the time of the POST: a 404, which is no refusal.
    page = new_page()
    page.add_init_script(RECORD_CONSOLE)
    page.goto(f"{server.url}/login")
    posts = []

    def gone(route: Any) -> None:
        posts.append(route.request.post_data_json)
        route.fulfill(status=404, json={"error": {"code": "not_found", "message": "No such."}})

    page.route(f"{server.url}/realtime/subscribe", gone)
    page.goto(f"{server.url}/example")
    page.wait_for_function("window.logged.includes('log subscribed messages')")
    Message.create(text="still followed", author=alice)
    page.wait_for_function("window.logged.some((line) => line.startsWith('log messages create'))")
    assert len(posts) == 1 and posts[0]["connection_id"] and posts[0]["stream_key"]
    assert not any(line.startswith("warn") for line in page.evaluate("window.logged"))


# README's app, with a second user.
@pytest.fixture(scope="module")
def readme_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, Path]]:
    """The server, and the app's folder: its static/ serves the example pages."""
    config = my_app(tmp_path_factory.mktemp("myapp"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    created = subprocess.run(
        [sys.executable, "-m", "runtime", "create-user", "bob"],
        cwd=config.parent,
        env={**environ, "RUNTIME_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT * 6,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    with ServerProcess(config, {"RUNTIME_APP_DEMO": "false"}, app="myapp:app") as server:
        yield server, config.parent


@contextlib.contextmanager
def api(server: ServerProcess, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        login = {"username": username, "password": PASSWORD}
        assert client.post("/auth/login", json=login).is_success
        yield client


def test_one_records_detail_page(
    readme_server: tuple[ServerProcess, Path], new_page: NewPage
) -> None:
    (detail,) = blocks("docs/client.md", "js", section="One record's detail page (`posts/42`)")
    server, folder = readme_server
    base = server.url
    with api(server, "ann") as ann:
        records = "/api/collections/posts/records"
        post = ann.post(records, json={"title": "first"}).json()
        page = new_page()
        page.add_init_script(RECORD_FRAMES)
        log_in(page, base, "ann", next_path="/")
        markup = f'<article id="post" data-id="{post["id"]}"><h1></h1></article>'
        (folder / "static").mkdir(exist_ok=True)
        (folder / "static" / "post.html").write_text(example(detail, markup))
        page.goto(f"{base}/static/post.html")
        expect(page.locator("#post h1")).to_have_text("first")
        wait_subscribed(page, f"posts/{post['id']}")
        ann.patch(f"{records}/{post['id']}", json={"title": "edited"})
        expect(page.locator("#post h1")).to_have_text("edited")
        ann.delete(f"{records}/{post['id']}")
        expect(page.locator("#post")).to_have_text("This post is gone.")

        missing = new_page()
        missing.goto(f"{base}/static/post.html")  # that id is gone: a 404
        expect(missing.locator("#post")).to_have_text("This post is gone.")


def test_typing(readme_server: tuple[ServerProcess, Path], new_page: NewPage) -> None:
    (typing,) = blocks("docs/client.md", "js", section='Custom events: "typing…"')
    server, folder = readme_server
    base = server.url
    (folder / "static").mkdir(exist_ok=True)
    pages = {}
    for name in ("ann", "bob"):
        page = pages[name] = new_page()
        page.add_init_script(RECORD_FRAMES)
        log_in(page, base, name, next_path="/")
        token = page.locator("input[name=csrf_token]").first.input_value()  # the layout's
        markup = (
            f'<meta name="csrf-token" content="{token}"><input id="message"><p id="typing"></p>'
        )
        (folder / "static" / f"chat-{name}.html").write_text(example(typing, markup))
        page.goto(f"{base}/static/chat-{name}.html")
        wait_subscribed(page, "posts")
    ann, bob = pages["ann"], pages["bob"]
    with bob.expect_response(f"{base}/typing") as sent:
        bob.type("#message", "h")
    assert sent.value.status == 200
    expect(ann.locator("#typing")).to_have_text("bob typing…")
    ann.type("#message", "h")
    # Bob's own announcement came before Ann's, and was not shown: not yourself.
    expect(bob.locator("#typing")).to_have_text("ann typing…")
    with api(server, "ann") as client:  # without the page's token
        assert client.post("/typing").status_code == 403


@pytest.fixture
def events_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    with client_events_server(tmp_path, monkeypatch) as server:
        yield server


def test_emit_and_publish(events_server: LiveServer, tmp_path: Path, new_page: NewPage) -> None:
    (block,) = blocks(
        "docs/client.md",
        "js",
        section="`emit(name, data?, {timeout?})` and `publish(channel, name, data?, {timeout?})`",
    )
    page = new_page()
    login = {"username": "alice", "password": PASSWORD}
    assert page.request.post(f"{events_server.url}/auth/login", data=login).ok
    after = "window.example = { answer, event_id };\n"
    (tmp_path / "static").mkdir()  # the app's folder: its static/ serves the page
    (tmp_path / "static" / "example.html").write_text(example(block, after=after))
    page.goto(f"{events_server.url}/static/example.html")
    page.wait_for_function("window.example !== undefined")
    result = page.evaluate("window.example")
    assert result["answer"] == {"sides": 6}  # the handler's return value
    assert isinstance(result["event_id"], str) and result["event_id"]
