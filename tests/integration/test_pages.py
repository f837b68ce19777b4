"""The demo pages, driven over HTTP like a browser without JavaScript would."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.support import TIMEOUT, LiveServer

# What a browser sends when it loads a page or posts a form.
PAGE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def page_client(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=TIMEOUT, headers=PAGE)


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, html
    return match.group(1)


def test_log_in_and_post_a_message(server: LiveServer) -> None:
    with page_client(server) as browser:
        page = browser.get("/", follow_redirects=True)
        assert page.status_code == 200 and "No messages yet" in page.text
        assert browser.get("/notes").headers["location"].startswith("/login")
        failed = browser.post("/login", data={"username": "alice", "password": "nope"})
        assert failed.status_code == 400 and "Invalid username or password" in failed.text
        login = browser.post(
            "/login?next=/messages", data={"username": "alice", "password": PASSWORD}
        )
        assert login.status_code == 302 and login.headers["location"] == "/messages"
        page = browser.get("/messages")
        assert "Signed in as <strong>alice</strong>" in page.text
        token = csrf(page.text)
        posted = browser.post("/messages", data={"text": "<b>hi</b> there", "csrf_token": token})
        assert posted.status_code == 302
        page = browser.get("/messages")
        assert "&lt;b&gt;hi&lt;/b&gt; there" in page.text  # escaped, never raw HTML
        forged = browser.post("/messages", data={"text": "forged", "csrf_token": "0" * 64})
        assert forged.status_code == 403
        assert "forged" not in browser.get("/messages").text


def test_notes_page_shows_only_the_owners_notes(server: LiveServer) -> None:
    with (
        page_client(server) as alice,
        page_client(server) as bob,
    ):
        alice.post("/login", data={"username": "alice", "password": PASSWORD})
        bob.post("/login", data={"username": "bob", "password": PASSWORD})
        token = csrf(alice.get("/notes").text)
        alice.post("/notes", data={"title": "alice's secret", "body": "x", "csrf_token": token})
        assert "alice&#39;s secret" in alice.get("/notes").text
        assert "alice&#39;s secret" not in bob.get("/notes").text


HOSTILE_NEXT = [
    "//evil.example/",
    "/%5Cevil.example/",  # "/\\evil.example/": browsers read a backslash as a slash
    "/%5C%5Cevil.example/",
    "/%09/evil.example/",  # browsers drop tabs and newlines from URLs
    "/%0A/evil.example/",
    "/%0D%0ASet-Cookie:%20x=1",  # would be a header injection (and was a 500)
    "/%00",
    "/%20/evil.example/",
    "%2F%2Fevil.example/",
    "https://evil.example/",
    "evil.example",
    "/%E2%80%A8evil",  # U+2028, not plain URL text
    "/" + "a" * 3000,
]


@pytest.mark.parametrize("next_param", HOSTILE_NEXT)
def test_next_never_leaves_the_site(server: LiveServer, next_param: str) -> None:
    with page_client(server) as browser:
        form = browser.get(f"/login?next={next_param}")
        assert form.status_code == 200
        assert 'action="/login?next=/"' in form.text
        login = browser.post(
            f"/login?next={next_param}", data={"username": "alice", "password": PASSWORD}
        )
        assert login.status_code == 302, login.text
        assert login.headers["location"] == "/"
        assert browser.get("/auth/me").json()["user"]["username"] == "alice"


@pytest.mark.parametrize("next_param", ["/notes", "/notes?view=all#top", "/messages/"])
def test_next_keeps_a_path_on_the_site(server: LiveServer, next_param: str) -> None:
    with page_client(server) as browser:
        login = browser.post(
            "/login", params={"next": next_param}, data={"username": "alice", "password": PASSWORD}
        )
        assert login.status_code == 302 and login.headers["location"] == next_param
