"""Quart's request and websocket objects as runtime/adapters/quart.py builds them from
an ASGI scope: as Quart itself does (Quart is pinned in pyproject.toml). If a test here
fails after an upgrade, re-check the adapter against Quart's new sources, then move the
pin."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from quart import Quart
from quart.asgi import ASGIHTTPConnection, ASGIWebsocketConnection
from quart.wrappers.request import Request
from quart.wrappers.websocket import Websocket

from runtime.adapters.quart import quart_headers, request_for_checks, websocket_for_checks

HINT = "; re-check runtime/adapters/quart.py against the new version"

SCOPE = {
    "type": "http",
    "method": "GET",
    "scheme": "http",
    "path": "/realtime/subscribe",
    "root_path": "",
    "query_string": b"pattern=messages&format=html",
    "headers": [(b"host", b"example.com"), (b"accept", b"text/event-stream")],
    "client": ("203.0.113.9", 5000),
    "http_version": "1.1",
    "extensions": {},
}


@pytest.mark.parametrize(
    ("made_by", "kind", "first_arguments"),
    [
        (
            ASGIWebsocketConnection._create_websocket_from_scope,
            Websocket,
            [
                "path",
                "query_string",
                "scheme",
                "headers",
                "root_path",
                "http_version",
                "subprotocols",
            ],
        ),
        (
            ASGIHTTPConnection._create_request_from_scope,
            Request,
            [
                "method",
                "scheme",
                "path",
                "query_string",
                "headers",
                "root_path",
                "http_version",
                "scope",
            ],
        ),
    ],
    ids=["websocket", "request"],
)
def test_quart_builds_its_objects_as_realtime_does(
    made_by: Any, kind: type, first_arguments: list[str]
) -> None:
    """runtime/adapters/quart.py builds Quart's websocket and request objects for the
    door's checks from the ASGI scope, with Quart's positional arguments."""
    made = inspect.getsource(made_by)
    constructor = "websocket_class(" if kind is Websocket else "request_class("
    for part in ('headers["Remote-Addr"]', 'self.scope["query_string"]', constructor):
        assert part in made, f"Quart reads the scope differently now: {part}{HINT}"
    params = list(inspect.signature(kind.__init__).parameters)
    assert params[1 : 1 + len(first_arguments)] == first_arguments, (
        f"Quart's {kind.__name__} takes other arguments now{HINT}"
    )


async def test_the_objects_read_the_scope_as_quart_reads_it() -> None:
    app = Quart(__name__)
    headers = quart_headers(SCOPE)
    assert headers["Remote-Addr"] == "203.0.113.9" and headers["Host"] == "example.com"
    async with app.request_context(request_for_checks(app, SCOPE)):
        from quart import request

        assert request.args.getlist("pattern") == ["messages"]
        assert request.headers["Accept"] == "text/event-stream"
        assert request.remote_addr == "203.0.113.9"
    scope = {**SCOPE, "type": "websocket", "scheme": "ws", "subprotocols": []}
    async with app.websocket_context(websocket_for_checks(app, scope)):
        from quart import websocket

        assert websocket.args.get("format") == "html"
        assert websocket.headers["Host"] == "example.com"
