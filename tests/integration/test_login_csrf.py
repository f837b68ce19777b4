"""Login and logout refuse cross-site requests (login CSRF, forced logout), over a real
server: a browser says where a request comes from in Origin and Sec-Fetch-Site."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from runtime.config import Config
from tests.conftest import PASSWORD
from tests.support import TIMEOUT, LiveServer, assert_error

FRONT_END = "https://front.example"
CREDENTIALS = {"username": "alice", "password": PASSWORD}
CROSS_SITE = [
    {"Origin": "https://evil.example"},
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://127.0.0.1.evil.example"},
    {"Origin": "null"},  # sandboxed frames and privacy-preserving redirects
    {"Sec-Fetch-Site": "cross-site"},  # no Origin, but a browser says where it came from
]


@pytest.fixture
def config(config: Config) -> Config:
    return config.replace(auth={"allowed_origins": [FRONT_END]})


@pytest.fixture
def browser(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        yield c


def same_origin(server: LiveServer) -> dict[str, str]:
    return {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}


def logged_in_as(c: httpx.Client) -> str | None:
    me = c.get("/auth/me")
    return me.json()["user"]["username"] if me.status_code == 200 else None


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_cross_site_login_is_refused(browser: httpx.Client, headers: dict[str, str]) -> None:
    response = browser.post("/auth/login", data=CREDENTIALS, headers=headers)
    assert_error(response, 403, "forbidden")
    assert "set-cookie" not in response.headers
    assert logged_in_as(browser) is None


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_cross_site_login_form_is_refused(browser: httpx.Client, headers: dict[str, str]) -> None:
    response = browser.post("/login?next=/notes", data=CREDENTIALS, headers=headers)
    assert_error(response, 403, "forbidden")
    assert logged_in_as(browser) is None


@pytest.mark.parametrize("path", ["/auth/login", "/login"])
def test_the_sites_own_pages_listed_origins_and_other_clients_log_in(
    server: LiveServer, path: str
) -> None:
    for headers in [
        same_origin(server),
        {"Origin": server.url},
        # Behind a TLS proxy that passes the browser's Host on (docs/security.md).
        {"Origin": "https://public.example", "Host": "public.example"},
        {"Origin": FRONT_END, "Sec-Fetch-Site": "cross-site"},  # listed in allowed_origins
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed in the address bar
        {},  # httpx, curl, scripts: no Origin at all
    ]:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
            response = c.post(path, data=CREDENTIALS, headers=headers)
            assert response.status_code in (200, 302), (headers, response.text)
            assert logged_in_as(c) == "alice"


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_cross_site_logout_is_refused(
    server: LiveServer, browser: httpx.Client, headers: dict[str, str]
) -> None:
    assert browser.post("/auth/login", json=CREDENTIALS).status_code == 200
    assert_error(browser.post("/auth/logout", headers=headers), 403, "forbidden")
    assert logged_in_as(browser) == "alice"
    assert browser.post("/auth/logout", headers=same_origin(server)).status_code == 200
    assert logged_in_as(browser) is None


def test_the_logout_form_needs_this_site_and_its_token(
    server: LiveServer, browser: httpx.Client
) -> None:
    browser.post("/login", data=CREDENTIALS, headers=same_origin(server))
    page = browser.get("/messages").text
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert match
    token = match.group(1)
    # Another site's page knows neither the token nor how to hide where it comes from.
    for headers, form in [
        ({"Origin": "https://evil.example"}, {"csrf_token": token}),
        (same_origin(server), {}),
        (same_origin(server), {"csrf_token": "0" * 64}),
        ({}, {"csrf_token": "0" * 64}),
    ]:
        assert_error(browser.post("/logout", data=form, headers=headers), 403, "forbidden")
        assert logged_in_as(browser) == "alice"
    ended = browser.post("/logout", data={"csrf_token": token}, headers=same_origin(server))
    assert ended.status_code == 302
    assert logged_in_as(browser) is None


def test_no_cors_preflight_is_granted(browser: httpx.Client) -> None:
    """The records API takes JSON only; another site's page could send JSON only after a
    preflight, which the server never grants (docs/security.md)."""
    preflight = browser.options(
        "/api/collections/messages/records",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert not any(name.startswith("access-control-") for name in preflight.headers)
