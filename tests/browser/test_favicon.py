"""The shared layouts carry their icon: loading a page makes no /favicon.ico request,
the 404 every page made before."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page
from quart import Quart

from runtime import create_app
from runtime.config import Config
from runtime.db import database
from tests.access_log import Capture
from tests.support import LiveServer

NewPage = Callable[..., Page]


def assert_no_favicon_request(
    server: LiveServer, page: Page, access_log: Capture, paths: list[str]
) -> None:
    """Load `paths` (pages of a layout) on 127.0.0.1; then a page without any, on the
    name `localhost`: the browser asks that one for /favicon.ico. Once that request is
    logged, any the layout pages made was too (a page's icon is asked for once it has
    loaded; a new server's port is new to the browser's cache of missing icons)."""
    for path in paths:
        response = page.goto(f"{server.url}{path}")
        assert response is not None and response.ok, path
    page.goto(f"http://localhost:{server.port}/no-layout-here")
    asked = access_log.wait_for("/favicon.ico")
    hosts = [record.args["{host}i"] for record in asked]  # type: ignore[index,call-overload]
    assert hosts == [f"localhost:{server.port}"], hosts


def test_the_demo_layout_has_its_icon(
    server: LiveServer, new_page: NewPage, access_log: Capture
) -> None:
    assert_no_favicon_request(server, new_page(), access_log, ["/messages", "/login"])


@pytest.fixture
def own_app(config: Config, tmp_path: Path) -> Iterator[Quart]:
    """An app of one's own with no templates: its login page is the runtime's, in the
    runtime's layout (runtime/base.html)."""
    yield create_app(config, root_path=tmp_path)
    database.close()


def test_the_runtimes_layout_has_its_icon(
    own_app: Quart, new_page: NewPage, access_log: Capture
) -> None:
    with LiveServer(own_app) as server:
        assert_no_favicon_request(server, new_page(), access_log, ["/login"])
