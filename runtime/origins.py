"""Cross-site request checks for cookie-authenticated actions that carry no token.

Login and logout are such actions: a page on another site could post its own
credentials to log a victim in as the attacker (login CSRF), or log the victim out.
Browsers say where a request comes from in `Origin` (and `Sec-Fetch-Site`); non-browser
clients send neither and are not at risk, so they pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import current_app, request

from .errors import Forbidden

__all__ = ["is_cross_site", "origin_allowed", "refuse_cross_site"]


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a browser at `origin` may act on the server reached as `host` (realtime
    connections, login and logout).

    No Origin header means a non-browser client: allowed. The server's own origin (the
    one the Host header names) is always allowed; others must be listed, or "*" listed.
    """
    if origin is None:
        return True
    if "*" in allowed:
        return True
    origin = origin.strip().lower().rstrip("/")
    if origin in (o.lower().rstrip("/") for o in allowed):
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc or host is None:
        return False
    return _netloc(parts.scheme, parts.netloc) == _netloc(parts.scheme, host.strip().lower())


def _netloc(scheme: str, netloc: str) -> str:
    default = ":443" if scheme == "https" else ":80"
    return netloc[: -len(default)] if netloc.endswith(default) else netloc


def is_cross_site(
    origin: str | None, fetch_site: str | None, host: str | None, allowed: tuple[str, ...]
) -> bool:
    """Whether a request from `origin` to the server reached as `host` is cross-site.

    An Origin must be the server's own or listed in `allowed` ("null", sent by sandboxed
    frames and privacy redirects, is neither). Without one, `Sec-Fetch-Site: cross-site`
    still gives a browser request away.
    """
    if origin is not None:
        return not origin_allowed(origin, host, allowed)
    return fetch_site is not None and fetch_site.strip().lower() == "cross-site"


def refuse_cross_site() -> None:
    """Forbidden unless the current request comes from this site or an allowed origin."""
    allowed: tuple[str, ...] = current_app.extensions["runtime"].config.auth.allowed_origins
    headers = request.headers
    # The Host header as sent, as the realtime handshake reads it (werkzeug's
    # request.host would normalise the port by this server's scheme, not the browser's).
    host = headers.get("Host")
    if is_cross_site(headers.get("Origin"), headers.get("Sec-Fetch-Site"), host, allowed):
        raise Forbidden("Cross-site request refused: log in and out from this site's own pages.")
