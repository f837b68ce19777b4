"""One door for both transports: a new connection, or a typed refusal that each transport
says its own way (`protocol.Refusal`: an HTTP error, or a WebSocket closed at once).

The checks, in order: the browser's origin, who is connecting (visitors only where
`realtime.allow_anonymous`), a server shutting down, a server at capacity, and how many
connections the user and the client's address already have (the user's on every
process when the backend is shared; the address's on this one: that cap guards each
process against one client flooding it, and sharing it would cost Redis a count per
address for little more). They run in a Quart
request or websocket context, like a view: the session, `g` and the app's `identify`
work as usual.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from ...origins import origin_allowed
from ...proxies import request_client
from ..connections.connection import Connection
from ..protocol import RATE_LIMITED_CLOSE, CloseCode, Refusal

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

    from ...config import RealtimeConfig
    from ..connections.index import ConnectionIndex

__all__ = ["Door", "Identify", "Identity", "session_end"]

# Who is connecting: (user or None, an id of their server-side session or None), and
# optionally when that session ends (a datetime, UTC if naive; None: it does not), after
# which its connections are closed with 4401 within a heartbeat.
Identity: TypeAlias = tuple[Any, str | None] | tuple[Any, str | None, datetime.datetime | None]
Identify = Callable[[], Awaitable[Identity]]

# Whether a user with this many connections here, the new one included, stays within
# the cap on every process (a shared backend's count; see broker/sharing.py).
SharedCap = Callable[[Any, int, int], Awaitable[bool]]

# Seconds a refused client is asked to wait before it tries again.
RETRY_AFTER = 5

FORBIDDEN_ORIGIN = Refusal(403, "forbidden", "This origin may not connect.")
LOG_IN_FIRST = Refusal(401, "unauthorized", "Log in to connect.")
SHUTTING_DOWN = Refusal(503, "unavailable", "The server is shutting down.", retry_after=RETRY_AFTER)
AT_CAPACITY = Refusal(
    503,
    "unavailable",
    "The server is at capacity; try again later.",
    CloseCode.TRY_AGAIN_LATER,
    "at capacity",
    RETRY_AFTER,
)
TOO_MANY_FOR_USER = Refusal(
    429,
    "rate_limited",
    "Too many connections for this user.",
    RATE_LIMITED_CLOSE,
    "too many connections for this user",
    RETRY_AFTER,
)
TOO_MANY_FROM_ADDRESS = Refusal(
    429,
    "rate_limited",
    "Too many connections from this address.",
    RATE_LIMITED_CLOSE,
    "too many connections from this address",
    RETRY_AFTER,
)


class Door:
    """Admits connections for every transport, by one set of checks."""

    def __init__(
        self,
        config: RealtimeConfig,
        connections: ConnectionIndex,
        identify: Identify,
        shutting_down: Callable[[], bool],
        shared_cap: SharedCap | None = None,
    ) -> None:
        self._config = config
        self._connections = connections
        self._identify = identify
        self._shutting_down = shutting_down
        self._shared_cap = shared_cap

    async def admit(self, headers: Headers, transport: str, *, pongs: bool) -> Connection | Refusal:
        """A connection for `transport` ("websocket", "sse"), not yet connected; or why
        not. `pongs`: the client answers pings (so silence past the timeout closes it)."""
        config = self._config
        origin, host = headers.get("Origin"), headers.get("Host")
        if not origin_allowed(origin, host, config.allowed_origins):
            return FORBIDDEN_ORIGIN
        identity = await self._identify()
        user, session_hash = identity[0], identity[1]
        if user is None and not config.allow_anonymous:
            return LOG_IN_FIRST
        if self._shutting_down():
            return SHUTTING_DOWN
        if len(self._connections) >= config.max_connections:
            return AT_CAPACITY
        address = request_client().address
        refusal = self._too_many(user, address) or await self._too_many_anywhere(user)
        if refusal is not None:
            return refusal
        return Connection(
            user=user,
            session_hash=session_hash,
            address=address,
            transport=transport,
            max_queue=config.send_queue_size,
            max_queue_bytes=config.send_queue_bytes,
            pongs=pongs,
            session_ends=session_end(identity),
        )

    def _too_many(self, user: Any, address: str) -> Refusal | None:
        """Why a new connection of `user` from `address` is one too many, or None."""
        per_user = self._config.max_connections_per_user
        if per_user and user is not None and self._connections.count_of_user(user.id) >= per_user:
            return TOO_MANY_FOR_USER
        per_address = self._config.max_connections_per_address
        if per_address and self._connections.count_of_address(address) >= per_address:
            return TOO_MANY_FROM_ADDRESS
        return None

    async def _too_many_anywhere(self, user: Any) -> Refusal | None:
        """The user's connections on every process sharing the backend, counted there."""
        per_user = self._config.max_connections_per_user
        if not per_user or user is None or self._shared_cap is None:
            return None
        here = self._connections.count_of_user(user.id) + 1
        if await self._shared_cap(user.id, here, per_user):
            return None
        return TOO_MANY_FOR_USER


def session_end(identity: Identity) -> float | None:
    """When the identified session ends, as a Unix time; None if it does not."""
    ends = identity[2] if len(identity) > 2 else None
    if ends is None:
        return None
    if ends.tzinfo is None:  # naive: UTC, as runtime.users stores it
        ends = ends.replace(tzinfo=datetime.UTC)
    return ends.timestamp()
