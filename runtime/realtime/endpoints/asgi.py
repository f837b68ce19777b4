"""The ASGI layer in front of the app (`app.asgi_app`, Quart's place for middleware):
realtime's WebSockets and SSE streams on `/realtime/subscribe` are served here (see
websocket.py and sse.py), everything else by the app, the SSE POST too (http.py).
Requests that may write are counted while under way, so that the events of those served
together go out together (broker/writes_under_way.py).

At the server's start (its lifespan scope) the log says if realtime will not write
frames straight to the sockets, and why.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Quart

from ...requests import SAFE_METHODS
from ..state import current_realtime
from ..transports.serving import fast_path_report, route_path
from . import sse, websocket

__all__ = ["PATH", "RealtimeASGI"]

log = logging.getLogger("runtime.realtime")

PATH = "/realtime/subscribe"


class RealtimeASGI:
    """ASGI middleware (`app.asgi_app`): realtime's WebSockets and SSE streams are served
    here, everything else by the app."""

    def __init__(self, app: Quart, inner: Callable[[Any, Any, Any], Awaitable[None]]) -> None:
        self.app = app
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":  # the server starts: say if the fast path is off, and why
            report = fast_path_report(current_realtime(self.app).config, send)
            if report is not None:
                log.log(*report)
        elif kind in ("websocket", "http") and route_path(scope) == PATH:
            state = current_realtime(self.app)
            if kind == "websocket":
                await websocket.serve(self.app, state, scope, receive, send)
                return
            if scope["method"] == "GET":
                await sse.serve(self.app, state, scope, receive, send)
                return
        if kind == "http" and scope["method"] not in SAFE_METHODS:
            await self._write(scope, receive, send)
            return
        await self.inner(scope, receive, send)

    async def _write(self, scope: Any, receive: Any, send: Any) -> None:
        """A request that may write, counted under way until it answers (see
        runtime/realtime/broker/writes_under_way.py)."""
        writes = current_realtime(self.app).broker.writes
        writes.started()
        answered = False

        async def answer(message: Any) -> None:
            nonlocal answered
            if not answered and message["type"] == "http.response.start":
                answered = True
                writes.ended()  # what waits for it runs at the loop's next turn
            await send(message)

        try:
            await self.inner(scope, receive, answer)
        finally:
            if not answered:
                writes.ended()
