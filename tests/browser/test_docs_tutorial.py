"""docs/tutorial.md's task board, built from the page's blocks alone, served with
`--app` and followed in Chromium: a model with an owner rule and a hidden field, a page
live over htmx and one over the JavaScript client (WebSocket, then the SSE fallback), a
route that broadcasts, a background writer, a channel with presence, a client event
with an answer, and a page that says so when its session ends."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect
from websockets.sync.client import connect

from tests.browser.conftest import log_in
from tests.conftest import PASSWORD
from tests.docs_apps import blocks, commands, create_users
from tests.support import TIMEOUT, ServerProcess, assert_error

DOC = "docs/tutorial.md"
RECORDS = "/api/collections/tasks/records"

# The pages are the doc's own, with no hook for tests: record what their WebSocket and
# EventSource connections receive, and the answers to their fetch() calls (over SSE,
# subscription replies and their snapshots come that way).
RECORD_FRAMES = """
window.framesReceived = [];
const record = (event) => window.framesReceived.push(String(event.data));
const originalFetch = window.fetch;
window.fetch = async (...args) => {
  const response = await originalFetch(...args);
  response.clone().text().then((text) => window.framesReceived.push(text));
  return response;
};
if (window.WebSocket) {
  window.WebSocket = class extends window.WebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", record);
    }
  };
}
window.EventSource = class extends window.EventSource {
  addEventListener(type, listener, options) {
    super.addEventListener(type, record);
    super.addEventListener(type, listener, options);
  }
};
"""

# A fenced block whose first line names its file: "# board.py", "// static/board.js",
# "{# templates/board.html -#}".
FILE_NAME = re.compile(r"^(?:# |// |\{# )(?P<name>[\w./-]+\.(?:py|js|html))(?: -#\})?$")


def tutorial_files() -> dict[str, str]:
    """The files of docs/tutorial.md: each block that names a file, in order; a file
    named by several blocks is those blocks one after the other."""
    files: dict[str, list[str]] = {}
    for block in [*blocks(DOC, "python"), *blocks(DOC, "html"), *blocks(DOC, "js")]:
        match = FILE_NAME.match(block.partition("\n")[0])
        assert match, f"a block of {DOC} that names no file: {block[:60]!r}"
        files.setdefault(match["name"], []).append(block)
    return {name: "\n\n".join(parts) for name, parts in files.items()}


def build_board(folder: Path) -> Path:
    """The app as the tutorial lays it out, with its users ann and bob made as it says;
    returns its configuration."""
    files = tutorial_files()
    assert sorted(files) == [
        "board.py",
        "static/board.js",
        "templates/board.html",
        "templates/fragments/task.html",
        "templates/htmx.html",
    ]
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)
    config = folder / "config.toml"
    config.write_text('[app]\nlog_level = "warning"\n')
    *user_commands, serve = commands(DOC, section="1. The model and the app")
    assert user_commands == [
        ["python", "-m", "runtime", "create-user", name] for name in ("ann", "bob")
    ]
    assert serve == ["python", "-m", "runtime", "serve", "--app", "board:app"]
    create_users(folder, user_commands)
    return config


@pytest.fixture
def board(tmp_path: Path) -> Iterator[ServerProcess]:
    config = build_board(tmp_path)
    with ServerProcess(config, {"RUNTIME_APP_DEMO": "false"}, app="board:app") as server:
        yield server


def secrets_in(folder: Path) -> list[str]:
    """Every task's hidden `secret`, as the database keeps it."""
    with sqlite3.connect(folder / "var" / "runtime.sqlite3") as db:
        return [secret for (secret,) in db.execute("SELECT secret FROM tasks")]


def open_page(
    new_page: Callable[..., Page], url: str, user: str, path: str, *, without_websocket: bool
) -> Page:
    page = new_page(without_websocket=without_websocket)
    page.add_init_script(RECORD_FRAMES)
    log_in(page, url, user, next_path=path)
    return page


def row(page: Page, task: dict[str, Any]) -> Locator:
    """The task's element: the client's list marks it with its topic; htmx's has its id."""
    return page.locator(f'#tasks li[data-topic="tasks/{task["id"]}"], #tasks #task-{task["id"]}')


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_the_task_board_of_the_tutorial(
    board: ServerProcess, new_page: Callable[..., Page], tmp_path: Path, transport: str
) -> None:
    sse = transport == "sse"
    with (
        httpx.Client(base_url=board.url, timeout=TIMEOUT) as ann_api,
        httpx.Client(base_url=board.url, timeout=TIMEOUT) as bob_api,
    ):
        for name, api in (("ann", ann_api), ("bob", bob_api)):
            login = api.post("/auth/login", json={"username": name, "password": PASSWORD})
            assert login.is_success, login.text
        # 1. The model: an owner rule, a hidden field, a read-only one.
        created = ann_api.post(RECORDS, json={"title": "Water the plants"})
        assert created.status_code == 201, created.text
        first = created.json()
        assert set(first) == {"id", "title", "done", "owner", "claimed_by"}
        assert_error(
            ann_api.post(RECORDS, json={"title": "x", "secret": "mine"}), 400, "bad_request"
        )
        assert_error(
            ann_api.patch(f"{RECORDS}/{first['id']}", json={"claimed_by": "ann"}),
            400,
            "bad_request",
        )

        # 2 and 3. The client's page, Ann's and Bob's, and the htmx page (SSE anyway) in
        # a second tab of Ann's.
        ann = open_page(new_page, board.url, "ann", "/", without_websocket=sse)
        bob = open_page(new_page, board.url, "bob", "/", without_websocket=sse)
        wall = ann.context.new_page()
        wall_errors: list[str] = []
        wall.on("pageerror", lambda error: wall_errors.append(str(error)))
        wall.add_init_script(RECORD_FRAMES)
        wall.goto(f"{board.url}/htmx")
        pages = (wall, ann, bob)
        for page in (ann, bob):
            expect(page.locator("#state")).to_have_text(f"live ({transport})")
        expect(wall.locator("#state")).to_have_text("live")
        for page in pages:
            expect(page.locator("#tasks li .title")).to_have_text(["Water the plants"])

        # 6. Presence: both are on the board (Ann's htmx page is not).
        for page in (ann, bob):
            expect(page.locator("#here")).to_have_text("ann, bob")

        # Live: creates, updates and deletes through the API.
        second = ann_api.post(RECORDS, json={"title": "Buy milk"}).json()
        for page in (ann, bob):
            expect(page.locator("#tasks li .title")).to_have_text(["Water the plants", "Buy milk"])
        expect(wall.locator("#tasks li .title")).to_have_text(["Buy milk", "Water the plants"])
        secrets = secrets_in(tmp_path)
        edited = ann_api.patch(f"{RECORDS}/{first['id']}", json={"done": True, "title": "Plants"})
        assert edited.is_success, edited.text
        for page in pages:
            expect(row(page, first).locator(".title")).to_have_text("Plants")
            expect(row(page, first).locator(".done")).to_have_text("done")
        # Bob may read Ann's tasks, not change or delete them.
        assert_error(
            bob_api.patch(f"{RECORDS}/{first['id']}", json={"title": "x"}), 403, "forbidden"
        )
        assert_error(bob_api.delete(f"{RECORDS}/{second['id']}"), 403, "forbidden")
        assert ann_api.delete(f"{RECORDS}/{second['id']}").status_code == 204
        for page in pages:
            expect(page.locator("#tasks li .title")).to_have_text(["Plants"])
        assert [t["title"] for t in bob_api.get(RECORDS).json()["items"]] == ["Plants"]

        # The client's page posts too: Bob's task reaches every page.
        bob.fill("#new-task input[name=title]", "Bob's task")
        bob.click("#new-task button")
        for page in (ann, bob):
            expect(page.locator("#tasks li .title")).to_have_text(["Plants", "Bob's task"])
        expect(wall.locator("#tasks li .title")).to_have_text(["Bob's task", "Plants"])

        # 4. The route that broadcasts (with the page's CSRF token; without it, 403).
        assert_error(ann_api.post("/nudge", json={}), 403, "forbidden")
        bob.click("#nudge")
        for page in (ann, bob):
            expect(page.locator("#nudged")).to_have_text("bob nudged everyone.")

        # 5. The background writer: the page queues, the app's thread writes.
        ann.fill("#import textarea", "One\nTwo\n\nThree")
        ann.click("#import button")
        expect(ann.locator("#answer")).to_have_text("Importing 3 tasks.")
        imported = ["Plants", "Bob's task", "One", "Two", "Three"]
        for page in (ann, bob):
            expect(page.locator("#tasks li .title")).to_have_text(imported)
        expect(wall.locator("#tasks li .title")).to_have_text(imported[::-1])
        secrets += secrets_in(tmp_path)
        owners = {t["title"]: t["owner"] for t in ann_api.get(RECORDS).json()["items"]}
        assert owners["One"] == owners["Plants"] == first["owner"] != owners["Bob's task"]

        # 7. The client event and its answer; a second claim is refused.
        row(bob, first).locator("button").click()
        expect(bob.locator("#answer")).to_have_text('You claimed "Plants".')
        for page in pages:
            expect(row(page, first).locator(".claimed")).to_have_text("claimed by bob")
        row(ann, first).locator("button").click()
        expect(ann.locator("#answer")).to_have_text("Refused: bob has claimed it already.")

        # 6. Bob leaves the board.
        seen = {page: [page.content(), *page.evaluate("window.framesReceived")] for page in pages}
        bob.close()
        expect(ann.locator("#here")).to_have_text("ann")

        # The hidden field never left the server: API, pages, frames.
        assert len(set(secrets)) == 6 and all(secrets)
        texts = [ann_api.get(RECORDS).text, bob_api.get(RECORDS).text]
        for received in seen.values():
            assert "Plants" in received[0] and any("Plants" in frame for frame in received[1:])
            texts += received
        for secret in secrets:
            assert not any(secret in text for text in texts), secret
        assert not any('"secret"' in text for text in texts)

        # 2 and 3. Ann logs out in another tab: her pages say so, and mark their lists stale.
        for page in (ann, wall):
            expect(page.locator("#tasks")).not_to_have_attribute("data-stale", re.compile(".*"))
        second_tab = ann.context.new_page()
        second_tab.goto(f"{board.url}/")
        second_tab.get_by_role("button", name="Log out").click()
        second_tab.wait_for_url(re.compile(r"/login"))
        expect(ann.locator("#state")).to_have_text("signed out — reload to sign in")
        expect(ann.locator("#state")).to_have_attribute("data-state", "signed-out")
        expect(ann.locator("#tasks")).to_have_attribute("data-stale", "forbidden")
        expect(ann.locator("#tasks li .title")).to_have_text(imported)  # kept, not live
        expect(wall.locator("#state")).to_have_text("signed out — reload to sign in")
        expect(wall.locator("#state")).to_have_attribute("data-live", "signed-out")
        expect(wall.locator("#tasks")).to_have_attribute("data-stale", "session_ended")
        expect(wall.locator("#tasks li .title")).to_have_text(imported[::-1])
        assert wall_errors == []


def test_the_import_queue_is_bounded(board: ServerProcess, tmp_path: Path) -> None:
    """While another process holds the database's write lock the writer is stuck on one
    job: the queue fills, /import answers 429, and once the lock goes every accepted
    import is written and announced."""
    with httpx.Client(base_url=board.url, timeout=TIMEOUT) as bob:
        assert bob.post("/auth/login", json={"username": "bob", "password": PASSWORD}).is_success
        token = re.search(r'name="csrf-token" content="([^"]+)"', bob.get("/").text)
        assert token, "the board page carries its CSRF token"
        cookie = "; ".join(f"{k}={v}" for k, v in bob.cookies.items())
        with connect(
            f"{board.ws_url}/realtime/subscribe",
            additional_headers={"Cookie": cookie},
            open_timeout=TIMEOUT,
        ) as ws:
            assert json.loads(ws.recv(TIMEOUT))["type"] == "connected"
            ws.send(json.dumps({"type": "subscribe", "id": "t", "pattern": "tasks"}))
            assert json.loads(ws.recv(TIMEOUT))["type"] == "subscribed"

            lock = sqlite3.connect(tmp_path / "var" / "runtime.sqlite3", isolation_level=None)
            try:
                lock.execute("BEGIN IMMEDIATE")  # readers go on; writers wait
                statuses = []
                for n in range(40):  # the queue holds 20, the writer one
                    answer = bob.post(
                        "/import",
                        json={"titles": [f"import {n}"]},
                        headers={"X-CSRF-Token": token[1]},
                    )
                    statuses.append(answer.status_code)
                    if answer.status_code == 429:
                        assert_error(answer, 429, "rate_limited")
                        break
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            accepted = statuses.count(202)
            assert statuses == [202] * accepted + [429] and 20 <= accepted <= 21, statuses

            created = []
            while len(created) < accepted:
                frame = json.loads(ws.recv(TIMEOUT))
                frames = frame if isinstance(frame, list) else [frame]
                created += [f for f in frames if f.get("action") == "create"]
            titles = [event["record"]["title"] for event in created]
            assert titles == [f"import {n}" for n in range(accepted)]


# -- 8. Changing the model ---------------------------------------------------------------

CHANGING = "8. Changing the model"


def changed(source: str, diff: str) -> str:
    """`source` with the doc's diff applied: its context line found, its - lines taken
    out and its + lines put in after it."""
    context, *edits = diff.splitlines()
    assert context.startswith(" ") and source.count(context[1:] + "\n") == 1, context
    for edit in edits:
        if edit.startswith("+"):
            source = source.replace(context[1:] + "\n", f"{context[1:]}\n{edit[1:]}\n")
        else:
            assert edit.startswith("-") and edit[1:] + "\n" in source, edit
            source = source.replace(edit[1:] + "\n", "")
    return source


def test_changing_the_model_at_start_up_and_with_migrate(
    tmp_path: Path, new_page: Callable[..., Page]
) -> None:
    from tests.test_serve_app import runtime

    config = build_board(tmp_path)
    settings = {"RUNTIME_APP_DEMO": "false", "PYTHONDONTWRITEBYTECODE": "1"}
    add, remove = blocks(DOC, "diff", section=CHANGING)
    (refusal,) = blocks(DOC, "text", section=CHANGING)
    dry_run, destructive, serve = commands(DOC, section=CHANGING)
    assert serve == ["python", "-m", "runtime", "serve", "--app", "board:app"]
    board_py = tmp_path / "board.py"
    with (
        ServerProcess(config, settings, app="board:app") as server,
        httpx.Client(base_url=server.url, timeout=TIMEOUT) as api,
    ):
        api.post("/auth/login", json={"username": "ann", "password": PASSWORD})
        assert api.post(RECORDS, json={"title": "Before"}).status_code == 201

    board_py.write_text(changed(board_py.read_text(), add))  # restart: the column is added
    with ServerProcess(config, settings, app="board:app") as server:
        page = new_page(without_websocket=False)
        log_in(page, server.url, "ann", next_path="/")
        page.goto(f"{server.url}{RECORDS}")
        (task,) = json.loads(page.locator("body").inner_text())["items"]
        assert (task["title"], task["priority"]) == ("Before", 0)

    board_py.write_text(changed(board_py.read_text(), remove))  # start-up refuses
    refused = runtime(tmp_path, *serve[3:], "--port", "0", **settings)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [refusal.strip()]
    planned = runtime(tmp_path, *dry_run[3:], **settings)
    assert planned.returncode == 0, planned.stderr
    assert 'ALTER TABLE "tasks" DROP COLUMN "priority";' in planned.stdout.splitlines()
    dropped = runtime(tmp_path, *destructive[3:], **settings)
    assert (dropped.returncode, dropped.stdout) == (0, 'Task.priority: dropped column "priority"\n')

    with ServerProcess(config, settings, app="board:app") as server:  # as at step 7
        page = open_page(new_page, server.url, "ann", "/", without_websocket=False)
        expect(page.locator("#tasks li .title")).to_have_text(["Before"])
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as api:
            api.post("/auth/login", json={"username": "ann", "password": PASSWORD})
            assert api.post(RECORDS, json={"title": "After"}).status_code == 201
        expect(page.locator("#tasks li .title")).to_have_text(["Before", "After"])
