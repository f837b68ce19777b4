"""README's app of your own, docs/pages.md's views and docs/events.md's plain Quart app,
served as the docs say (`python -m runtime serve --app`), with real clients."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import PASSWORD
from tests.docs_apps import events_app, my_app
from tests.realtime_client import Client
from tests.support import TIMEOUT, ServerProcess, assert_error

PAGE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # a browser loading a page


async def test_readme_app_with_the_pages_of_pages_md(tmp_path: Path) -> None:
    with ServerProcess(my_app(tmp_path), app="myapp:app") as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT, headers=PAGE) as browser,
            httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as api,
            await Client.connect(server) as visitor,
        ):
            sent = await browser.get("/")
            assert sent.status_code == 302 and sent.headers["location"] == "/login?next=/"
            drafts = await browser.get("/drafts")
            assert drafts.headers["location"] == "/login?next=/drafts"
            assert_error(await api.get("/drafts"), 401, "unauthorized")
            login = {"username": "ann", "password": PASSWORD}
            logged_in = await browser.post("/login?next=/", data=login)
            assert logged_in.status_code == 302 and logged_in.headers["location"] == "/"
            created = await browser.post("/api/collections/posts/records", json={"title": "first"})
            assert created.status_code == 201, created.text
            page = (await browser.get("/")).text
            assert f'<li data-id="{created.json()["id"]}">first</li>' in page
            assert "Signed in as <strong>ann</strong>" in page  # runtime/base.html
            assert (await browser.get("/drafts")).text == "only for users who are logged in"

            # pages.md's form: the token or 403; a shout reaches every connection.
            form = (await browser.get("/shout")).text
            match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form)
            assert match, form
            assert_error(await browser.post("/shout", data={"text": "hi"}), 403, "forbidden")
            shouted = await browser.post("/shout", data={"text": "hi", "csrf_token": match[1]})
            assert shouted.status_code == 302
            event = await visitor.recv_type("event")
            assert (event["name"], event["data"]) == ("shout", {"text": "hi", "by": "ann"})


async def test_the_plain_quart_app_of_events_md(tmp_path: Path) -> None:
    with ServerProcess(events_app(tmp_path), app="plain:app") as server:
        async with (
            await Client.connect(server) as visitor,
            httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
        ):
            assert visitor.connected["user"] is None
            await visitor.ok_subscribe("posts")
            added = await http.post("/posts", json={"title": "hello"})
            assert added.status_code == 200
            event = await visitor.recv_type("event")
            assert event["topic"] == f"posts/{added.json()['id']}"
            assert event["record"]["title"] == "hello"
    assert (tmp_path / "board.sqlite3").is_file()  # its own database, where it said
