"""What an SSE POST (`POST /realtime/subscribe`) does to the live stream it names, on the
process that holds that stream: the same checks and the same answer whether the POST
arrived there or was forwarded from another process (forwarding.py). The POST's origin
and its session are read where it arrived, which has its headers and cookies.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import Forbidden, NotFound
from .. import protocol
from ..connections.connection import ConnectionGone

if TYPE_CHECKING:
    from ..connections.connection import Connection
    from ..connections.index import ConnectionIndex
    from .commands import CommandRouter

__all__ = ["NO_SUCH_STREAM", "change_stream", "held_stream"]

NO_SUCH_STREAM = "No such SSE connection."


def held_stream(connections: ConnectionIndex, connection_id: str) -> Connection:
    """The SSE stream of that id held here, or NotFound (a WebSocket's id included)."""
    conn = connections.get(connection_id)
    if conn is None or conn.transport != "sse":
        raise NotFound(NO_SUCH_STREAM)
    return conn


async def change_stream(
    router: CommandRouter, conn: Connection, session_hash: str | None, body: Mapping[str, Any]
) -> str:
    """Carry out the POST's items on `conn` and return its answer's body (JSON), if it
    comes from the stream's own client: its session (`session_hash`, of the POST's
    cookies), and the stream's key. Forbidden, NotFound, or what the router raises."""
    if session_hash != conn.session_hash:
        raise Forbidden("Only the session that opened this stream may change it.")
    if not _holds_key(conn, body.get("stream_key")):
        raise Forbidden(
            "Only the client that opened this stream may change it: send the stream_key "
            "of its connected message."
        )
    try:
        results = await router.post(conn, body)
    except ConnectionGone:  # the stream ended while this was under way
        raise NotFound(NO_SUCH_STREAM) from None
    # Encoded as frames are: a snapshot's datetimes as ISO text, like on the stream.
    return protocol.encode({"results": results})


def _holds_key(conn: Connection, key: object) -> bool:
    """Whether a POST proves that it comes from the client that opened the stream: it
    carries the stream's key, which only that client read (in its `connected` message).
    A stream opened with a session may do without, its session being proof enough as it
    always was; a visitor's may not, for every visitor has the same (no) session."""
    if key is None:
        return conn.session_hash is not None
    expected = conn.stream_key
    if not isinstance(key, str) or expected is None:
        return False
    return hmac.compare_digest(key.encode("utf-8", "surrogatepass"), expected.encode())
