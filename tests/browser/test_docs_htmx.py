"""docs/htmx.md's live page, added to README's app of your own as the page says, served
with `--app` and followed in Chromium: snapshot, create, update, delete, escaping; the
fragments' buttons carry the layout's CSRF token, and a refusal shows its message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in
from tests.conftest import PASSWORD
from tests.docs_apps import blocks, create_users, my_app
from tests.support import TIMEOUT, ServerProcess

BUTTONS = "Buttons in fragments: CSRF and errors"


@pytest.fixture
def htmx_server(tmp_path: Path) -> Iterator[ServerProcess]:
    config = my_app(tmp_path)
    (python,) = blocks("docs/htmx.md", "python", section="The record's fragment")
    (view,) = blocks("docs/htmx.md", "python", section=BUTTONS)
    with (tmp_path / "myapp.py").open("a") as module:
        module.write("\n\n" + python + "\n\n" + view)
    create_users(tmp_path, [["python", "-m", "runtime", "create-user", "bob"]])
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
        posts = page.locator("#posts li .title")
        expect(posts).to_have_text(["first"])  # the snapshot

        second = ann.post(records, json={"title": "<i>second</i>"}).json()
        expect(posts).to_have_text(["<i>second</i>", "first"])  # on top, escaped
        ann.patch(f"{records}/{first['id']}", json={"title": "first, edited"})
        expect(page.locator(f"#post-{first['id']} .title")).to_have_text("first, edited")
        ann.delete(f"{records}/{second['id']}")
        expect(posts).to_have_text(["first, edited"])
        # Created and changed at once: the new element listens before the next message.
        for _ in range(3):
            third = ann.post(records, json={"title": "third"}).json()
            ann.patch(f"{records}/{third['id']}", json={"title": "third, edited"})
            ann.delete(f"{records}/{third['id']}")
        ann.post(records, json={"title": "last"})
        expect(posts).to_have_text(["last", "first, edited"])


def test_buttons_in_live_fragments_carry_the_token_and_show_refusals(
    htmx_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    records = "/api/collections/posts/records"
    with httpx.Client(base_url=htmx_server.url, timeout=TIMEOUT) as ann:
        assert ann.post("/auth/login", json={"username": "ann", "password": PASSWORD}).is_success
        first = ann.post(records, json={"title": "first"}).json()
        pages = {}
        for name in ("ann", "bob"):
            pages[name] = new_page()
            log_in(pages[name], htmx_server.url, name, next_path="/live")
            expect(pages[name].locator("#posts li .title")).to_have_text(["first"])
        ann_page, bob_page = pages["ann"], pages["bob"]
        # A button of a fragment that came as a live event, not with the snapshot.
        second = ann.post(records, json={"title": "second"}).json()
        for page in (ann_page, bob_page):
            expect(page.locator("#posts li .title")).to_have_text(["second", "first"])

        # Bob's click on Ann's post: refused (403), and the page shows why.
        with bob_page.expect_response(f"{htmx_server.url}/posts/{second['id']}") as answer:
            bob_page.locator(f"#post-{second['id']} button").click()
        assert answer.value.status == 403
        assert answer.value.request.headers.get("x-csrf-token")  # the layout's hx-headers
        expect(bob_page.locator("#problem")).to_have_text("Only its author may remove this post.")

        # Ann's click: the token goes along, the post goes from every page.
        with ann_page.expect_response(f"{htmx_server.url}/posts/{second['id']}") as answer:
            ann_page.locator(f"#post-{second['id']} button").click()
        assert answer.value.status == 204
        for page in (ann_page, bob_page):
            expect(page.locator("#posts li .title")).to_have_text(["first"])
        expect(ann_page.locator("#problem")).to_have_text("")
        # Bob's click on his own post succeeds, and clears the message.
        with httpx.Client(base_url=htmx_server.url, timeout=TIMEOUT) as bob:
            login = {"username": "bob", "password": PASSWORD}
            assert bob.post("/auth/login", json=login).is_success
            his = bob.post(records, json={"title": "bob's"}).json()
        expect(bob_page.locator("#posts li .title")).to_have_text(["bob's", "first"])
        bob_page.locator(f"#post-{his['id']} button").click()
        expect(bob_page.locator("#posts li .title")).to_have_text(["first"])
        expect(bob_page.locator("#problem")).to_have_text("")

        # Without the token (not from the page): refused before the rule is asked.
        refused = ann.delete(f"/posts/{first['id']}")
        assert refused.status_code == 403 and "expired" in refused.json()["error"]["message"]
        # The fragment is the same for everyone: no token in what the stream sent.
        token = ann_page.evaluate(
            "JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']"
        )
        assert token and token not in bob_page.content()
