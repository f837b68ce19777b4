"""docs/htmx.md's live page, added to README's app of your own as the page says, served
with `--app` and followed in Chromium: snapshot, create, update, delete, escaping; the
fragments' buttons carry the layout's CSRF token, and a refusal shows its message; the
page tells when its session ended or its stream is refused, and marks the list stale."""

from __future__ import annotations

import re
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


def serve_docs_page(
    folder: Path, *, read_rule: str = "public", environ: dict[str, str] | None = None
) -> ServerProcess:
    """docs/htmx.md's app and templates as written, in `folder`; README's `read_rule` of
    posts may be swapped for another."""
    config = my_app(folder)
    (python,) = blocks("docs/htmx.md", "python", section="The record's fragment")
    (view,) = blocks("docs/htmx.md", "python", section=BUTTONS)
    module = folder / "myapp.py"
    readme_app = module.read_text()
    assert readme_app.count('read_rule = "public"') == 1
    readme_app = readme_app.replace('read_rule = "public"', f"read_rule = {read_rule!r}")
    module.write_text(readme_app + "\n\n" + python + "\n\n" + view)
    create_users(folder, [["python", "-m", "runtime", "create-user", "bob"]])
    (fragment,) = blocks("docs/htmx.md", "html", section="The record's fragment")
    (folder / "templates" / "fragments").mkdir()
    (folder / "templates" / "fragments" / "post.html").write_text(fragment)
    (page,) = blocks("docs/htmx.md", "html", section="The page")
    (folder / "templates" / "live.html").write_text(page)
    environ = {"RUNTIME_APP_DEMO": "false", **(environ or {})}
    return ServerProcess(config, environ, app="myapp:app")


@pytest.fixture
def htmx_server(tmp_path: Path) -> Iterator[ServerProcess]:
    with serve_docs_page(tmp_path) as server:
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


SIGNED_OUT = "signed out — reload to sign in"


def test_the_page_tells_that_its_session_ended(
    htmx_server: ServerProcess, new_page: Callable[..., Page]
) -> None:
    """Posts are public: after a logout in another tab the stream comes back as a
    visitor's, live, but the page was Ann's and says so until it is reloaded."""
    records = "/api/collections/posts/records"
    with httpx.Client(base_url=htmx_server.url, timeout=TIMEOUT) as ann:
        assert ann.post("/auth/login", json={"username": "ann", "password": PASSWORD}).is_success
        ann.post(records, json={"title": "first"})
        page = new_page()
        log_in(page, htmx_server.url, "ann", next_path="/live")
        state, posts = page.locator("#live-state"), page.locator("#posts")
        expect(state).to_have_text("live")
        expect(posts.locator("li .title")).to_have_text(["first"])
        expect(posts).not_to_have_attribute("data-stale", re.compile(".*"))

        other_tab = page.context.new_page()
        other_tab.goto(f"{htmx_server.url}/live")
        other_tab.get_by_role("button", name="Log out").click()
        other_tab.wait_for_url(re.compile(r"/login"))
        expect(state).to_have_text(SIGNED_OUT)
        expect(posts).to_have_attribute("data-stale", "session_ended")
        # The visitor's stream that follows is live, and its snapshot leaves the mark.
        ann.post(records, json={"title": "second"})
        expect(posts.locator("li .title")).to_have_text(["second", "first"])
        expect(state).to_have_text(SIGNED_OUT)
        expect(posts).to_have_attribute("data-stale", "session_ended")

        page.reload()  # a visitor's page now: live, as a visitor's
        expect(state).to_have_text("live")
        expect(posts).not_to_have_attribute("data-stale", re.compile(".*"))


@pytest.fixture
def members_only(tmp_path: Path) -> Iterator[ServerProcess]:
    with serve_docs_page(tmp_path, read_rule="authenticated") as server:
        yield server


def test_a_refused_stream_is_told_at_once_and_cleared_by_a_login(
    members_only: ServerProcess, new_page: Callable[..., Page]
) -> None:
    with httpx.Client(base_url=members_only.url, timeout=TIMEOUT) as ann:
        assert ann.post("/auth/login", json={"username": "ann", "password": PASSWORD}).is_success
        ann.post("/api/collections/posts/records", json={"title": "first"})
    page = new_page()
    page.goto(f"{members_only.url}/live")  # a visitor: posts are for users only
    state, posts = page.locator("#live-state"), page.locator("#posts")
    expect(state).to_have_text(re.compile(r"^not live: .+"))
    expect(posts).to_have_attribute("data-stale", "forbidden")
    expect(posts.locator("li")).to_have_count(0)

    log_in(page, members_only.url, "ann", next_path="/live")
    expect(state).to_have_text("live")
    expect(posts.locator("li .title")).to_have_text(["first"])
    expect(posts).not_to_have_attribute("data-stale", re.compile(".*"))
    # Signed out elsewhere: the visitor's stream is refused, and the page still says why.
    other_tab = page.context.new_page()
    other_tab.goto(f"{members_only.url}/live")
    other_tab.get_by_role("button", name="Log out").click()
    other_tab.wait_for_url(re.compile(r"/login"))
    expect(state).to_have_text(SIGNED_OUT)
    expect(posts).to_have_attribute("data-stale", "session_ended")
    expect(posts.locator("li .title")).to_have_text(["first"])  # kept, not live


def test_a_stream_refused_with_an_http_error_is_told(
    tmp_path: Path, new_page: Callable[..., Page]
) -> None:
    environ = {"RUNTIME_REALTIME_ALLOW_ANONYMOUS": "false"}
    with serve_docs_page(tmp_path, environ=environ) as server:
        page = new_page()
        page.goto(f"{server.url}/live")  # a visitor, and visitors may not connect: 401
        expect(page.locator("#live-state")).to_have_text("not live: the server refused the stream")
        expect(page.locator("#posts")).to_have_attribute("data-stale", "refused")
