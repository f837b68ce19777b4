"""Quart's request and websocket objects, built from an ASGI scope as Quart builds them.

Realtime serves its connections in front of Quart (runtime/realtime/endpoints.py), but
runs their admission checks in a Quart request or websocket context, like a view:
sessions, `g`, `request.args` and the app's `identify` work as usual. Quart makes those
objects in `ASGIHTTPConnection._create_request_from_scope` and
`ASGIWebsocketConnection._create_websocket_from_scope`, which need Quart's own
connection machinery; these build the same objects from the scope alone, with the same
positional arguments. Quart is pinned in pyproject.toml; `tests/adapters/test_quart.py`
fails loudly when its constructors or its reading of the scope change.
"""

from __future__ import annotations

from typing import Any

from quart import Quart
from werkzeug.datastructures import Headers

__all__ = ["quart_headers", "request_for_checks", "websocket_for_checks"]


def quart_headers(scope: Any) -> Headers:
    """The request's headers as Quart reads them from the scope."""
    headers = Headers()
    headers["Remote-Addr"] = (scope.get("client") or ["<local>"])[0]
    for name, value in scope["headers"]:
        headers.add(name.decode("latin1").title(), value.decode("latin1"))
    return headers


def websocket_for_checks(app: Quart, scope: Any) -> Any:
    """Quart's websocket object for a handshake's checks; it neither reads nor writes
    the socket."""
    return app.websocket_class(
        scope["path"],
        scope["query_string"],
        scope.get("scheme", "ws"),
        quart_headers(scope),
        scope.get("root_path", ""),
        scope.get("http_version", "1.1"),
        list(scope.get("subprotocols", [])),
        _unused,
        _unused,
        _unused,
        _unused,
        scope=scope,
    )


def request_for_checks(app: Quart, scope: Any) -> Any:
    """Quart's request object for a request's checks; its body is not read."""
    return app.request_class(
        scope["method"],
        scope["scheme"],
        scope["path"],
        scope["query_string"],
        quart_headers(scope),
        scope.get("root_path", ""),
        scope["http_version"],
        scope,
        max_content_length=app.config["MAX_CONTENT_LENGTH"],
        body_timeout=app.config["BODY_TIMEOUT"],
        send_push_promise=_unused,
    )


async def _unused(*args: Any) -> Any:
    raise RuntimeError("realtime reads and writes this connection itself")
