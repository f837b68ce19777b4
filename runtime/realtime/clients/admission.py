"""Checks made before a realtime connection is accepted: origin, and how many
connections its user and its address have open."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ...config import RealtimeConfig
from ..state import Hub

__all__ = ["origin_allowed", "too_many_connections"]


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a browser at `origin` may connect to the server reached as `host`.

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


def too_many_connections(
    config: RealtimeConfig, broker: Hub, user: Any, address: str
) -> str | None:
    """Why a new connection of `user` from `address` is one too many, or None."""
    per_user = config.max_connections_per_user
    if per_user and user is not None and broker.count_of_user(user.id) >= per_user:
        return "too many connections for this user"
    per_address = config.max_connections_per_address
    if per_address and broker.count_of_address(address) >= per_address:
        return "too many connections from this address"
    return None
