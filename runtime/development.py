"""`serve --debug` and `--reload`: what changes in the served app, and when debug is refused.

Debug is Flask's `flask run --debug` habit: reload, templates re-read on change, log
level DEBUG, and the traceback of an unexpected error in its 500 answer. A traceback
tells whoever reads it how the app is built, so debug is refused where it could reach
anyone else: with `app.env = "production"`, and on a host that is not a loopback
address (the classic foot-gun of Werkzeug's debugger on 0.0.0.0).
"""

from __future__ import annotations

import html
import ipaddress
import traceback

from quart import Quart, Response, has_request_context, jsonify

from .errors import error_body
from .pages import wants_html

__all__ = ["debug_refusal", "debug_response", "development_refusal", "for_development"]

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def development_refusal(
    env: str, host: str, *, reload: bool, debug: bool, workers: int
) -> str | None:
    """Why `serve` with these `--reload`/`--debug` and `--workers` may not run, or None.
    One process only: a restart of several would be several restarts racing."""
    if (reload or debug) and workers > 1:
        flag = "--debug" if debug else "--reload"
        return f"{flag} restarts one server process: drop --workers {workers}"
    return debug_refusal(env, host) if debug else None


def debug_refusal(env: str, host: str) -> str | None:
    """Why `--debug` may not be used here, or None."""
    if env == "production":
        return "--debug: app.env is production; tracebacks in answers are for development"
    if not _loopback(host):
        return (
            f"--debug: --host {host} is not a loopback address; tracebacks in answers "
            "would reach the network (serve on 127.0.0.1, or drop --debug)"
        )
    return None


def _loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def for_development(app: Quart, *, debug: bool) -> None:
    """Templates re-read when they change (no restart needed); with `debug`, tracebacks
    in 500 answers (`app.debug`, which the error handler reads, as Flask's does)."""
    app.config["TEMPLATES_AUTO_RELOAD"] = True
    app.jinja_env.auto_reload = True  # the environment may exist already
    if debug:
        app.debug = True


def debug_response(error: BaseException) -> Response:
    """A 500 answer with `error`'s traceback: an HTML page for a browser asking for one,
    else the JSON error with a `traceback` field (a WebSocket handler's too)."""
    text = "".join(traceback.format_exception(error))
    if has_request_context() and wants_html():
        page = (
            "<!doctype html>\n<title>500 Internal server error</title>\n"
            "<h1>Internal server error</h1>\n"
            "<p>This traceback is shown because the server runs with --debug.</p>\n"
            f"<pre>{html.escape(text)}</pre>\n"
        )
        return Response(page, status=500, mimetype="text/html")
    response = jsonify(error_body("internal_error", "Internal server error.", traceback=text))
    response.status_code = 500
    return response
