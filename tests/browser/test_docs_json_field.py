"""docs/models.md's JSON field, run as written: the `Poll` model served with `--app`, its
JSON in and out of the API (structured, never a string), the JavaScript client's live
list and the htmx fragment in Chromium, both reading the structure as it comes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in
from tests.conftest import PASSWORD
from tests.docs_apps import blocks, create_users
from tests.support import TIMEOUT, ServerProcess, assert_error

DOC = "docs/models.md"
SECTION = "JSON fields"
RECORDS = "/api/collections/polls/records"

# What the section leaves to the reader: the app around the model, and the two pages.
APP = """
from quart import render_template

from runtime import Realtime, create_app

app = create_app()
Realtime.of(app).fragment("polls", "fragments/poll.html")


@app.get("/htmx")
async def htmx_page():
    return await render_template("polls.html")
"""

HTMX_PAGE = """{% extends "runtime/base.html" %}
{% block content %}
<div hx-ext="sse" sse-connect="/realtime/subscribe?pattern=polls&amp;snapshot=1&amp;format=html">
  <ul id="polls" sse-swap="polls:snapshot" hx-swap="innerHTML settle:0ms"></ul>
  <div hidden sse-swap="polls:create" hx-target="#polls" hx-swap="afterbegin settle:0ms"></div>
</div>
{% endblock %}
{% block scripts %}{{ realtime_htmx_scripts() }}{% endblock %}
"""


@pytest.fixture(scope="module")
def polls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("polls")
    (model,) = blocks(DOC, "python", section=SECTION)
    (folder / "polls.py").write_text(model + "\n\n" + APP)
    (fragment,) = blocks(DOC, "html", section=SECTION)
    (folder / "templates" / "fragments").mkdir(parents=True)
    (folder / "templates" / "fragments" / "poll.html").write_text(fragment)
    (folder / "templates" / "polls.html").write_text(HTMX_PAGE)
    (script,) = blocks(DOC, "js", section=SECTION)
    (folder / "static").mkdir()
    (folder / "static" / "polls.html").write_text(
        '<!doctype html>\n<meta charset="utf-8">\n<ul id="polls"></ul>\n<script type="module">\n'
        'import { RealtimeClient } from "/realtime/client.js";\n'
        f"const client = new RealtimeClient();\n{script}</script>\n"
    )
    config = folder / "config.toml"
    config.write_text('[app]\nlog_level = "warning"\n')
    create_users(folder, [["python", "-m", "runtime", "create-user", "ann"]])
    with ServerProcess(config, {"RUNTIME_APP_DEMO": "false"}, app="polls:app") as server:
        yield server


def test_a_json_field_through_the_api_and_on_both_pages(
    polls_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    with httpx.Client(base_url=polls_server.url, timeout=TIMEOUT) as ann:
        assert ann.post("/auth/login", json={"username": "ann", "password": PASSWORD}).is_success
        tea_or_coffee = [{"label": "Tea", "votes": 0}, {"label": "Coffee", "votes": 0}]
        created = ann.post(RECORDS, json={"question": "Tea or coffee?", "options": tea_or_coffee})
        assert created.status_code == 201, created.text
        poll = created.json()
        assert poll["options"] == tea_or_coffee  # the structure, not a string of it
        assert ann.get(f"{RECORDS}/{poll['id']}").json()["options"] == tea_or_coffee

        js = new_page()
        log_in(js, polls_server.url, "ann", next_path="/static/polls.html")
        wall = new_page()
        log_in(wall, polls_server.url, "ann", next_path="/htmx")
        for page in (js, wall):
            expect(page.locator(".poll strong")).to_have_text(["Tea or coffee?"])
            expect(page.locator(".poll .option")).to_have_text(["Tea: 0", "Coffee: 0"])

        votes = [{"label": "Tea", "votes": 3}, {"label": "Coffee", "votes": 1}]
        edited = ann.patch(f"{RECORDS}/{poll['id']}", json={"options": votes})
        assert edited.is_success and edited.json()["options"] == votes
        empty = ann.post(RECORDS, json={"question": "Anything?"}).json()  # default=list
        assert empty["options"] == []
        for page in (js, wall):  # newest first, the snapshot's order
            expect(page.locator(".poll strong")).to_have_text(["Anything?", "Tea or coffee?"])
        expect(js.locator(".poll .option")).to_have_text(["Tea: 3", "Coffee: 1"])
        expect(wall.locator(".poll .option")).to_have_text(
            ["No options yet.", "Tea: 3", "Coffee: 1"]
        )

        # What cannot be kept as JSON is a 400 naming the field, never a 500.
        deep: list[object] = []
        for _ in range(150):
            deep = [deep]
        too_deep = ann.patch(f"{RECORDS}/{poll['id']}", json={"options": deep})
        assert_error(too_deep, 400, "bad_request")
        assert "'options'" in too_deep.json()["error"]["message"]
        not_text = ann.patch(  # json.dumps escapes the surrogate; httpx's json= cannot send it
            f"{RECORDS}/{poll['id']}",
            content=json.dumps({"options": [{"label": "\ud800"}]}),
            headers={"Content-Type": "application/json"},
        )
        assert_error(not_text, 400, "bad_request")  # the API refuses it in any field
        assert ann.post(RECORDS, json={"question": "x", "options": None}).status_code == 400
