"""`runtime.pages` in an app of your own: the login page and logout, `login_required`,
CSRF tokens, templates of the app's own beside the runtime's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from quart import Quart, render_template, request

from runtime import create_app
from runtime.config import Config
from runtime.db import database
from runtime.pages import LOGIN_VIEW, check_csrf, csrf_protect, login_required
from runtime.users import User
from tests.conftest import PASSWORD, PASSWORD_HASH
from tests.support import TIMEOUT, LiveServer, assert_error

PAGE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # a browser loading a page
CREDENTIALS = {"username": "alice", "password": PASSWORD}


def build(config: Config, root: Path, **options: bool) -> Quart:
    app = create_app(config, models=[], root_path=root, **options)

    @app.get("/private")
    @login_required
    async def private() -> str:
        return await render_template("private.html", shown=request.args.get("x", ""))

    @app.post("/form")
    @csrf_protect
    async def form() -> dict[str, str]:
        return {"text": (await request.form).get("text", "")}

    @app.post("/checked")
    @login_required
    async def checked() -> dict[str, bool]:
        await check_csrf()
        return {"ok": True}

    return app


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The app's folder, with a page of its own on the runtime's plain layout."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "private.html").write_text(
        '{% extends "runtime/base.html" %}\n'
        "{% block content %}<p>private page {{ shown }}</p>"
        '<form method="post" action="/form">'
        '<input type="hidden" name="csrf_token" value="{{ csrf_token() }}"></form>'
        "{% endblock %}\n"
    )
    return tmp_path


@pytest.fixture
def own_app(config: Config, root: Path) -> Iterator[Quart]:
    app = build(config, root)
    User.create(username="alice", password_hash=PASSWORD_HASH)
    yield app
    database.close()


@pytest.fixture
def server(own_app: Quart) -> Iterator[LiveServer]:
    with LiveServer(own_app) as live:
        yield live


def browser(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=TIMEOUT, headers=PAGE)


def token_in(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, html
    return match.group(1)


def test_login_required_sends_a_browser_to_the_login_page_and_back(server: LiveServer) -> None:
    with browser(server) as b:
        sent = b.get("/private?x=1")
        assert sent.status_code == 302
        assert sent.headers["location"] == "/login?next=/private?x%3D1"
        form = b.get(sent.headers["location"])
        assert form.status_code == 200 and "<h1>Log in</h1>" in form.text
        failed = b.post(sent.headers["location"], data={**CREDENTIALS, "password": "nope"})
        assert failed.status_code == 400 and "Invalid username or password" in failed.text
        logged_in = b.post(sent.headers["location"], data=CREDENTIALS)
        assert logged_in.status_code == 302 and logged_in.headers["location"] == "/private?x=1"
        page = b.get("/private?x=1")
        assert "private page 1" in page.text
        assert "Signed in as <strong>alice</strong>" in page.text  # runtime/base.html


def test_login_required_answers_other_clients_with_401_json(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as api:
        assert_error(api.get("/private"), 401, "unauthorized")
        assert_error(api.post("/checked"), 401, "unauthorized")
        assert api.post("/auth/login", json=CREDENTIALS).status_code == 200
        assert api.get("/private").status_code == 200


def test_a_form_needs_the_sessions_csrf_token(server: LiveServer) -> None:
    with browser(server) as b:
        b.post("/login", data=CREDENTIALS)
        token = token_in(b.get("/private").text)
        assert_error(b.post("/form", data={"text": "x"}), 403, "forbidden")
        assert_error(b.post("/form", data={"text": "x", "csrf_token": "0" * 64}), 403, "forbidden")
        assert b.post("/form", data={"text": "x", "csrf_token": token}).json() == {"text": "x"}
        # Scripts send it as a header; check_csrf() is the same check in a view's body.
        assert b.post("/checked", headers={"X-CSRF-Token": token}).json() == {"ok": True}
        assert_error(b.post("/checked", headers={"X-CSRF-Token": b"\xfc"}), 403, "forbidden")
    with browser(server) as other:
        other.post("/login", data=CREDENTIALS)
        # Another session of the same user has a token of its own.
        assert token_in(other.get("/private").text) != token
        assert_error(other.post("/form", data={"csrf_token": token}), 403, "forbidden")


def test_logout_needs_the_token_and_this_site(server: LiveServer) -> None:
    with browser(server) as b:
        b.post("/login", data=CREDENTIALS)
        token = token_in(b.get("/private").text)
        assert_error(b.post("/logout"), 403, "forbidden")
        cross_site = {"Origin": "https://evil.example"}
        refused = b.post("/logout", data={"csrf_token": token}, headers=cross_site)
        assert_error(refused, 403, "forbidden")
        assert b.get("/auth/me").status_code == 200
        ended = b.post("/logout", data={"csrf_token": token})
        assert ended.status_code == 302 and ended.headers["location"] == "/login"
        assert b.get("/auth/me").status_code == 401
        assert b.get("/private").status_code == 302


def test_the_login_page_refuses_other_sites_and_limits_failures(server: LiveServer) -> None:
    with browser(server) as b:
        cross_site = {"Origin": "https://evil.example"}
        assert_error(b.post("/login", data=CREDENTIALS, headers=cross_site), 403, "forbidden")
        assert b.get("/auth/me").status_code == 401
        wrong = {**CREDENTIALS, "password": "wrong"}
        for _ in range(5):  # auth.login_limit_per_user
            assert b.post("/login", data=wrong).status_code == 400
        limited = b.post("/login", data=CREDENTIALS)
        assert limited.status_code == 400 and "Too many failed login attempts" in limited.text
        assert b.get("/auth/me").status_code == 401
        off_site = b.post("/login?next=//evil.example/", data={"username": "x", "password": "y"})
        assert 'action="/login?next=/"' in off_site.text


def test_an_app_replaces_the_login_page_with_its_own(config: Config, root: Path) -> None:
    (root / "templates" / "runtime").mkdir()
    (root / "templates" / "runtime" / "login.html").write_text(
        "<h1>Our own login</h1>"
        '<form method="post" action="{{ url_for(\'login.page\', next=next_url) }}">'
        "{{ error or '' }}</form>\n"
    )
    app = build(config, root)
    try:
        with LiveServer(app) as live, browser(live) as b:
            assert "<h1>Our own login</h1>" in b.get("/login").text
    finally:
        database.close()


def test_an_app_with_a_login_view_of_its_own(config: Config, root: Path) -> None:
    app = build(config, root, login_page=False)
    app.config[LOGIN_VIEW] = "sign_in"

    @app.get("/sign-in")
    async def sign_in() -> str:
        return "our sign-in page"

    try:
        with LiveServer(app) as live, browser(live) as b:
            assert b.get("/login").status_code == 404
            sent = b.get("/private")
            assert sent.headers["location"] == "/sign-in?next=/private"
    finally:
        database.close()


def test_the_client_is_served_where_it_always_was(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as http:
        for path in ("/static/realtime-client.js", "/realtime/client.js"):
            response = http.get(path)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/javascript")
            assert "class RealtimeClient" in response.text
