"""Realtime's endpoints, in front of the app and on its `realtime` blueprint: the
WebSocket and the SSE stream on `/realtime/subscribe` (asgi.py, websocket.py, sse.py),
and the HTTP views beside them (http.py)."""

from __future__ import annotations

from .asgi import PATH, RealtimeASGI
from .http import (
    client_script_response,
    realtime_blueprint,
    realtime_client_script,
    realtime_client_url,
    realtime_htmx_scripts,
)

__all__ = [
    "PATH",
    "RealtimeASGI",
    "client_script_response",
    "realtime_blueprint",
    "realtime_client_script",
    "realtime_client_url",
    "realtime_htmx_scripts",
]
