"""The realtime blueprint: SSE on `/realtime/subscribe` (the WebSocket there is served
in front of Quart, see websocket.py), the JavaScript client, metrics; and the template
helpers that load the client."""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup
from quart import Blueprint, Response, current_app, send_from_directory, url_for

from ..errors import Forbidden
from ..proxies import request_client
from .metrics import render_metrics
from .sse import sse_stream, sse_update
from .state import current_realtime

__all__ = ["realtime_blueprint", "realtime_client_script", "realtime_client_url"]

realtime_blueprint = Blueprint("realtime", __name__, url_prefix="/realtime")
realtime_blueprint.get("/subscribe")(sse_stream)
realtime_blueprint.post("/subscribe")(sse_update)


_STATIC = Path(__file__).resolve().parent.parent / "static"


@realtime_blueprint.get("/client.js")
async def client_js() -> Response:
    """The JavaScript client, served wherever Realtime is (any Quart app)."""
    return await send_from_directory(_STATIC, "realtime-client.js", mimetype="text/javascript")


@realtime_blueprint.get("/metrics")
async def metrics() -> Response:
    state = current_realtime(current_app)
    if not request_client().is_local:  # a proxy's requests are never local, even from ::1
        user, _session = await state.identify()
        if user is None or not user.is_admin:
            raise Forbidden("Metrics are for administrators and loopback callers.")
    text = render_metrics(state.broker)
    return Response(text, content_type="text/plain; version=0.0.4; charset=utf-8")


def realtime_client_url() -> str:
    """Template helper: the URL of the JavaScript client, to import it from a module."""
    return url_for("realtime.client_js")


def realtime_client_script() -> Markup:
    """Template helper: a script tag that loads the client (`window.RealtimeClient`)."""
    return Markup('<script type="module" src="{}"></script>').format(realtime_client_url())
