"""The JS client's live list in Chromium, over WebSocket and SSE: records keyed by
their topic (a primary key not named id), changes applied in place, untouched elements
left alone (an edit in progress survives), a reconnect reconciled by snapshot, and a
refused subscription marked on the list."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from runtime.demo import Note
from runtime.users import User
from tests.browser.conftest import log_in
from tests.browser.test_client_record_ids import Tag
from tests.conftest import PASSWORD
from tests.support import LiveServer

SETUP = """async (withUpdate) => {
    const { RealtimeClient } = await import("/realtime/client.js");
    const client = new RealtimeClient();
    window.client = client;
    const list = document.createElement("ul");
    list.id = "tags";
    document.body.append(list);
    window.renders = 0;
    window.changes = [];
    const render = (tag) => {
        window.renders += 1;
        const li = document.createElement("li");
        const input = document.createElement("input");
        input.value = tag.title;
        li.append(input);
        return li;
    };
    const update = (li, tag) => { li.querySelector("input").value = tag.title; };
    window.live = client.liveList("test_browser_tags", {
        list,
        render,
        update: withUpdate ? update : undefined,
        empty: "No tags.",
        onChange: (records, change) => window.changes.push(change.action),
    });
    await window.live.ready;
}"""

SHOWN = """() => [...document.querySelectorAll("#tags > li")].map((li) =>
    li.dataset.topic ? `${li.dataset.topic}=${li.querySelector("input").value}` : li.textContent)"""


def shown(page: Page) -> list[str]:
    result: list[str] = page.evaluate(SHOWN)
    return result


def wait_shown(page: Page, expected: list[str]) -> None:
    script = f"(expected) => JSON.stringify(({SHOWN})()) === JSON.stringify(expected)"
    try:
        page.wait_for_function(script, arg=expected)
    except Exception:
        raise AssertionError(f"shown: {shown(page)}, expected {expected}") from None


@pytest.mark.parametrize("without_websocket", [False, True], ids=["websocket", "sse"])
def test_changes_apply_in_place(
    server: LiveServer, new_page: Callable[..., Page], without_websocket: bool
) -> None:
    Tag.create(slug="b", title="bee")
    Tag.create(slug="a", title="ay")
    page = new_page(without_websocket=without_websocket)
    page.goto(f"{server.url}/login")
    page.evaluate(SETUP, False)
    transport = page.evaluate("window.client.transport")
    assert transport == ("sse" if without_websocket else "websocket")
    # The snapshot's order: newest first by the key (here a slug, descending).
    assert shown(page) == ["test_browser_tags/b=bee", "test_browser_tags/a=ay"]
    # An edit in progress in b's element.
    page.evaluate("""() => {
        const input = document.querySelector('[data-topic="test_browser_tags/b"] input');
        input.value = "bee, being edited";
        input.focus();
        window.bElement = input.parentNode;
    }""")

    Tag.create(slug="c", title="sea")
    a = Tag.get_by_id("a")
    a.title = "ay again"
    a.save()
    wait_shown(
        page,
        [
            "test_browser_tags/c=sea",  # created: placed by the order, at the top
            "test_browser_tags/b=bee, being edited",  # untouched, edit and all
            "test_browser_tags/a=ay again",  # updated: re-rendered in its place
        ],
    )
    assert page.evaluate("""() => window.bElement.isConnected
        && document.activeElement === window.bElement.querySelector("input")""")
    assert page.evaluate("window.renders") == 4  # b, a, c, and a again: nothing redrawn

    Tag.get_by_id("c").delete_instance()
    wait_shown(page, ["test_browser_tags/b=bee, being edited", "test_browser_tags/a=ay again"])
    records = page.evaluate("window.live.records.map((tag) => tag.slug)")
    assert records == ["b", "a"]

    # Away while things change: the snapshot on reconnect reconciles, keeping b's element.
    page.evaluate("window.client.close()")
    Tag.get_by_id("a").delete_instance()
    Tag.create(slug="d", title="dee")
    page.evaluate("window.client.connect()")
    wait_shown(page, ["test_browser_tags/d=dee", "test_browser_tags/b=bee, being edited"])
    assert page.evaluate("window.bElement.isConnected")

    Tag.delete().execute()  # one statement, two deletes: two events, then the empty list
    wait_shown(page, ["No tags."])
    assert page.evaluate("window.changes.filter((c) => c === 'snapshot').length") == 2


def test_an_update_function_patches_the_element(
    server: LiveServer, new_page: Callable[..., Page]
) -> None:
    Tag.create(slug="a", title="ay")
    page = new_page()
    page.goto(f"{server.url}/login")
    page.evaluate(SETUP, True)
    page.evaluate("window.aElement = document.querySelector('[data-topic]')")
    a = Tag.get_by_id("a")
    a.title = "patched"
    a.save()
    wait_shown(page, ["test_browser_tags/a=patched"])
    assert page.evaluate("window.aElement.isConnected && window.renders === 1")


STALE_SETUP = """async (withOnError) => {
    const { RealtimeClient } = await import("/realtime/client.js");
    const client = new RealtimeClient({ backoff: { initial: 50, max: 200 } });
    window.client = client;
    window.refusals = [];
    window.clientErrors = [];
    client.on("error", (error) => window.clientErrors.push(error.code));
    const list = document.createElement("ul");
    list.id = "notes";
    document.body.append(list);
    window.live = client.liveList("notes", {
        list,
        render: (note) => Object.assign(document.createElement("li"), { textContent: note.title }),
        onError: withOnError ? (error) => window.refusals.push(error.code) : undefined,
    });
    window.ready = window.live.ready.then(() => "subscribed", (error) => error.code);
}"""


@pytest.mark.parametrize("without_websocket", [False, True], ids=["websocket", "sse"])
def test_a_refused_list_marks_itself_stale_until_a_snapshot(
    server: LiveServer,
    users: dict[str, User],
    new_page: Callable[..., Page],
    without_websocket: bool,
) -> None:
    """Alice's notes follow her session: logged out elsewhere, the list's resubscription
    is refused and the list says so (`data-stale`, `stale`); logged in again and
    reconnected, a snapshot makes it live."""
    Note.create(title="mine", owner=users["alice"])
    page = new_page(without_websocket=without_websocket)
    log_in(page, server.url, "alice")
    page.evaluate(STALE_SETUP, True)
    assert page.evaluate("window.ready") == "subscribed"
    notes = page.locator("#notes")
    expect(notes.locator("li")).to_have_text(["mine"])
    expect(notes).not_to_have_attribute("data-stale", re.compile(".*"))

    page.evaluate("fetch('/auth/logout', { method: 'POST' })")  # as from another tab
    expect(notes).to_have_attribute("data-stale", "forbidden")
    assert page.evaluate("window.live.stale.code") == "forbidden"
    assert page.evaluate("window.refusals") == ["forbidden"]
    assert "session_ended" in page.evaluate("window.clientErrors")
    expect(notes.locator("li")).to_have_text(["mine"])  # kept, and marked as not followed

    login = {"username": "alice", "password": PASSWORD}
    assert page.request.post(f"{server.url}/auth/login", data=login).ok
    page.evaluate("window.client.close(); window.client.connect()")
    expect(notes).not_to_have_attribute("data-stale", re.compile(".*"))
    assert page.evaluate("window.live.stale") is None
    Note.create(title="again", owner=users["alice"])
    expect(notes.locator("li")).to_have_text(["again", "mine"])


def test_a_list_refused_at_once_is_stale_and_tells_the_client(
    server: LiveServer, new_page: Callable[..., Page]
) -> None:
    """A visitor may not read notes: without `onError` the refusal reaches
    `client.on("error")`, and `ready` still rejects."""
    page = new_page()
    page.goto(f"{server.url}/login")
    page.evaluate(STALE_SETUP, False)
    assert page.evaluate("window.ready") == "forbidden"
    expect(page.locator("#notes")).to_have_attribute("data-stale", "forbidden")
    assert page.evaluate("window.clientErrors") == ["forbidden"]


FILTERED_SETUP = """async () => {
    const { RealtimeClient } = await import("/realtime/client.js");
    const client = new RealtimeClient();
    window.client = client;
    const list = document.createElement("ul");
    list.id = "tags";
    document.body.append(list);
    window.changes = [];
    const render = (tag) => {
        const li = document.createElement("li");
        const input = document.createElement("input");
        input.value = tag.title;
        li.append(input);
        return li;
    };
    window.live = client.liveList("test_browser_tags", {
        list,
        render,
        filter: "title ~ 'tea'",
        empty: "No tags.",
        onChange: (records, change) => window.changes.push(`${change.action}:${change.reason}`),
    });
    await window.live.ready;
}"""


@pytest.mark.parametrize("without_websocket", [False, True], ids=["websocket", "sse"])
def test_a_record_edited_out_of_a_filtered_list_leaves_it_and_edited_back_returns(
    server: LiveServer, new_page: Callable[..., Page], without_websocket: bool
) -> None:
    for slug, title in (("a", "Green tea"), ("b", "coffee"), ("c", "tea time")):
        Tag.create(slug=slug, title=title)
    page = new_page(without_websocket=without_websocket)
    page.goto(f"{server.url}/login")
    page.evaluate(FILTERED_SETUP)
    assert shown(page) == ["test_browser_tags/c=tea time", "test_browser_tags/a=Green tea"]

    def edit(slug: str, title: str) -> None:
        tag = Tag.get_by_id(slug)
        tag.title = title
        tag.save()

    edit("a", "green coffee")  # out of the filter: gone from the page
    wait_shown(page, ["test_browser_tags/c=tea time"])
    edit("b", "black TEA")  # into it: shown where the order puts it
    wait_shown(page, ["test_browser_tags/c=tea time", "test_browser_tags/b=black TEA"])
    edit("a", "green tea again")  # back in
    wait_shown(
        page,
        [
            "test_browser_tags/c=tea time",
            "test_browser_tags/b=black TEA",
            "test_browser_tags/a=green tea again",
        ],
    )
    edit("c", "coffee time")
    edit("b", "black tea")  # still in: updated in place
    wait_shown(page, ["test_browser_tags/b=black tea", "test_browser_tags/a=green tea again"])
    assert page.evaluate("window.changes") == [
        "snapshot:undefined",
        "delete:filter",
        "create:filter",
        "create:filter",
        "delete:filter",
        "update:undefined",
    ]


TWO_LISTS_SETUP = """async () => {
    const { RealtimeClient } = await import("/realtime/client.js");
    const client = new RealtimeClient();
    window.client = client;
    window.changes = { tea: [], coffee: [] };
    const lists = [];
    for (const title of ["tea", "coffee"]) {
        const list = document.createElement("ul");
        list.id = title;
        document.body.append(list);
        // Two equality filters on one pattern: the server sends it unfiltered and the
        // client applies each list's.
        lists.push(client.liveList("test_browser_tags", {
            list,
            render: (tag) => Object.assign(document.createElement("li"), { textContent: tag.slug }),
            filter: { title },
            onChange: (records, change) =>
                window.changes[title].push(`${change.action}:${change.reason}`),
        }));
    }
    await Promise.all(lists.map((live) => live.ready));
}"""


def test_lists_filtered_apart_on_one_pattern_follow_records_between_them(
    server: LiveServer, new_page: Callable[..., Page]
) -> None:
    Tag.create(slug="a", title="tea")
    Tag.create(slug="b", title="coffee")
    page = new_page()
    page.goto(f"{server.url}/login")
    page.evaluate(TWO_LISTS_SETUP)
    lists = """() => ["tea", "coffee"].map((id) =>
        [...document.querySelectorAll(`#${id} > li`)].map((li) => li.textContent).join(","))"""
    assert page.evaluate(lists) == ["a", "b"]
    for title in ("coffee", "water", "tea"):  # a: to the other list, to neither, back
        tag = Tag.get_by_id("a")
        tag.title = title
        tag.save()
    tag = Tag.get_by_id("b")
    tag.title = "coffee"  # the same value: an update for the coffee list alone
    tag.save(only=[Tag.title])
    page.wait_for_function(
        "() => window.changes.coffee.length === 4 && window.changes.tea.length === 3"
    )
    assert page.evaluate(lists) == ["a", "b"]
    assert page.evaluate("window.changes") == {
        "tea": ["snapshot:undefined", "delete:filter", "create:filter"],
        "coffee": ["snapshot:undefined", "create:filter", "delete:filter", "update:undefined"],
    }
