"""After logging in, a real browser stays on the site whatever `next` says."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Route

from tests.conftest import PASSWORD
from tests.support import LiveServer

NewPage = Callable[..., Page]


@pytest.mark.parametrize(
    "next_param",
    ["/%5Cevil.example/", "/%5C%5Cevil.example/", "/%09/evil.example/", "//evil.example/"],
)
def test_login_never_sends_the_browser_off_site(
    server: LiveServer, new_page: NewPage, next_param: str
) -> None:
    page = new_page()
    off_site: list[str] = []

    def refuse(route: Route) -> None:
        off_site.append(route.request.url)
        route.abort()

    page.route(lambda url: not url.startswith(server.url + "/"), refuse)
    page.goto(f"{server.url}/login?next={next_param}")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/messages")
    assert off_site == []
