"""docs/htmx.md's live page, added to README's app of your own as the page says, served
with `--app` and followed in Chromium: snapshot, create, update, delete, escaping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in
from tests.conftest import PASSWORD
from tests.docs_apps import blocks, my_app
from tests.support import TIMEOUT, ServerProcess


@pytest.fixture
def htmx_server(tmp_path: Path) -> Iterator[ServerProcess]:
    config = my_app(tmp_path)
    (python,) = blocks("docs/htmx.md", "python", section="The record's fragment")
    with (tmp_path / "myapp.py").open("a") as module:
        module.write("\n\n" + python)
    (fragment,) = blocks("docs/htmx.md", "html", section="The record's fragment")
    (tmp_path / "templates" / "fragments").mkdir()
    (tmp_path / "templates" / "fragments" / "post.html").write_text(fragment)
    (page,) = blocks("docs/htmx.md", "html", section="The page")
    (tmp_path / "templates" / "live.html").write_text(page)
    with ServerProcess(config, {"RUNTIME_APP_DEMO": "false"}, app="myapp:app") as server:
        yield server


def test_the_htmx_page_of_the_docs(
    htmx_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    with httpx.Client(base_url=htmx_server.url, timeout=TIMEOUT) as ann:
        assert ann.post("/auth/login", json={"username": "ann", "password": PASSWORD}).is_success
        records = "/api/collections/posts/records"
        first = ann.post(records, json={"title": "first"}).json()
        page = new_page()
        log_in(page, htmx_server.url, "ann", next_path="/live")
        posts = page.locator("#posts li")
        expect(posts).to_have_text(["first"])  # the snapshot

        second = ann.post(records, json={"title": "<i>second</i>"}).json()
        expect(posts).to_have_text(["<i>second</i>", "first"])  # on top, escaped
        ann.patch(f"{records}/{first['id']}", json={"title": "first, edited"})
        expect(page.locator(f"#post-{first['id']}")).to_have_text("first, edited")
        ann.delete(f"{records}/{second['id']}")
        expect(posts).to_have_text(["first, edited"])
        # Created and changed at once: the new element listens before the next message.
        for _ in range(3):
            third = ann.post(records, json={"title": "third"}).json()
            ann.patch(f"{records}/{third['id']}", json={"title": "third, edited"})
            ann.delete(f"{records}/{third['id']}")
        ann.post(records, json={"title": "last"})
        expect(posts).to_have_text(["last", "first, edited"])
