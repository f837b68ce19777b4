"""Realtime's HTTP views, on the app's `realtime` blueprint: the SSE POST that changes a
live stream, the JavaScript client, htmx and the runtime's script for htmx pages,
metrics; and the template helpers that load them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from markupsafe import Markup
from quart import Blueprint, Response, current_app, request, url_for

from ...errors import Forbidden, NotFound
from ...origins import origin_allowed
from ...proxies import request_client
from ...requests import read_body
from ..clients.stream_posts import change_stream, held_stream
from ..metrics import render_metrics
from ..state import current_realtime

__all__ = [
    "client_script_response",
    "realtime_blueprint",
    "realtime_client_script",
    "realtime_client_url",
    "realtime_htmx_scripts",
]

realtime_blueprint = Blueprint("realtime", __name__, url_prefix="/realtime")


@realtime_blueprint.post("/subscribe")
async def sse_update() -> Response:
    """Change a live SSE stream's subscriptions, and send client events and channel
    publications from it (what a WebSocket sends as frames); only its own client may:
    its session, and the stream's key (a visitor's stream, which has no session, needs
    the key). A stream another process holds gets the POST through Redis (several
    processes), and its answer is this one's."""
    state = current_realtime(current_app)
    headers = request.headers
    if not origin_allowed(headers.get("Origin"), headers.get("Host"), state.config.allowed_origins):
        raise Forbidden("This origin may not connect.")
    body = await read_body()  # JSON only: a form post from another site cannot do this
    connection_id = str(body.get("connection_id", ""))
    if state.forwarding is not None and state.broker.connections.get(connection_id) is None:
        session_hash = (await state.identify())[1]
        answer = await state.forwarding.forward(connection_id, session_hash, body)
    else:
        conn = held_stream(state.broker.connections, connection_id)
        session_hash = (await state.identify())[1]
        answer = await change_stream(state.router, conn, session_hash, body)
    return Response(answer, content_type="application/json")


_STATIC = Path(__file__).resolve().parents[2] / "static"


_CLIENT = "realtime-client.js"
# The runtime's own script for htmx pages: live or not, and why (docs/htmx.md).
_HTMX_STATUS = "realtime-htmx.js"
# htmx and its SSE extension from npm (static/vendor/README.md), in load order; their
# names carry their versions.
HTMX = ("htmx-2.0.11.min.js", "htmx-ext-sse-2.2.4.min.js")
_YEAR = 365 * 24 * 3600
_IMMUTABLE = f"public, max-age={_YEAR}, immutable"
_files: dict[tuple[str, float], tuple[bytes, str]] = {}  # (name, mtime) -> bytes, hash


def _static_file(name: str) -> tuple[bytes, str]:
    """A shipped file's bytes and a hash of them, read again whenever it changes.
    Served from memory: a file body (send_file) leaks its open file when the browser
    hangs up while Quart is still closing it."""
    path = _STATIC / name
    key = (name, path.stat().st_mtime)
    source = _files.get(key)
    if source is None:
        content = path.read_bytes()
        for old in [k for k in _files if k[0] == name]:
            del _files[old]
        source = _files[key] = (content, hashlib.sha256(content).hexdigest()[:16])
    return source


def client_version() -> str:
    """A hash of the client's content: a new one whenever the file changes."""
    return _static_file(_CLIENT)[1]


async def _script_response(name: str, immutable: bool) -> Response:
    content, version = _static_file(name)
    response = Response(content, mimetype="text/javascript")
    response.set_etag(version)
    response.headers["Cache-Control"] = _IMMUTABLE if immutable else "no-cache"
    return await response.make_conditional(request)


async def client_script_response() -> Response:
    """The JavaScript client. Under its versioned URL (`realtime_client_url()`) browsers
    keep it for a year; under any other they check back each time (ETag)."""
    return await _script_response(_CLIENT, request.args.get("v") == client_version())


@realtime_blueprint.get("/client.js")
async def client_js() -> Response:
    """The JavaScript client, served wherever Realtime is (any Quart app)."""
    return await client_script_response()


@realtime_blueprint.get("/htmx.js")
async def htmx_js() -> Response:
    """The script that tells an htmx page's state (`data-live`, `data-stale`); kept
    for good under its versioned URL, as the client is."""
    version = _static_file(_HTMX_STATUS)[1]
    return await _script_response(_HTMX_STATUS, request.args.get("v") == version)


@realtime_blueprint.get("/vendor/<name>")
async def vendor_script(name: str) -> Response:
    """htmx and its SSE extension, for pages that follow a stream with htmx: no CDN
    needed. Their names carry their versions, so browsers keep them for good."""
    if name not in HTMX:
        raise NotFound(f"no vendored script named {name!r}")
    return await _script_response(f"vendor/{name}", immutable=True)


@realtime_blueprint.get("/metrics")
async def metrics() -> Response:
    state = current_realtime(current_app)
    if not request_client().is_local:  # a proxy's requests are never local, even from ::1
        user = (await state.identify())[0]
        if user is None or not user.is_admin:
            raise Forbidden("Metrics are for administrators and loopback callers.")
    text = render_metrics(state.broker)
    return Response(text, content_type="text/plain; version=0.0.4; charset=utf-8")


def realtime_client_url() -> str:
    """Template helper: the URL of the JavaScript client, to import it from a module;
    versioned by its content, so that browsers may cache it for good."""
    return url_for("realtime.client_js", v=client_version())


def realtime_htmx_scripts() -> Markup:
    """Template helper: script tags that load htmx and its SSE extension, as shipped,
    then the runtime's script that tells whether the page is live (versioned by its
    content)."""
    urls = [url_for("realtime.vendor_script", name=name) for name in HTMX]
    urls.append(url_for("realtime.htmx_js", v=_static_file(_HTMX_STATUS)[1]))
    return Markup("\n").join(Markup('<script src="{}"></script>').format(url) for url in urls)


def realtime_client_script() -> Markup:
    """Template helper: a script tag that loads the client (`window.RealtimeClient`)."""
    return Markup('<script type="module" src="{}"></script>').format(realtime_client_url())
