"""Writing queued frames straight to sockets, once per turn of the event loop; and the
wire formats they are written in.

A connection with a `sink` (a socket that can be written directly, see
`runtime/adapters/hypercorn.py`) does not wake a task per frame: `Connection.send` marks it
with the flusher, and at the end of the loop's turn the flusher writes each marked
connection's queue in one write. Everything published in one turn (a transaction's
events, a burst) thus goes out together, and `?batch=1` clients get it as one message.

Server-to-client WebSocket frames are not masked (RFC 6455, 5.1) and an SSE message is
the same text for every subscriber, so a frame's bytes are built once per flush, however
many connections get them.
"""

from __future__ import annotations

import asyncio
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..transports.html import Fragments
    from .connection import Connection

__all__ = ["Flusher", "chunk", "sse_message", "text_frame", "wire_bytes"]

_EVENT_PREFIX = '{"type":"event","id":"'
_TYPE_PREFIX = '{"type":"'


def sse_message(frame: str) -> str:
    """One encoded frame as an SSE message: `event:` its type, `data:` the frame, and
    events carry `id:`, so that EventSource resumes with Last-Event-ID by itself.

    `protocol.encode` writes "type" first and, for events, "id" second, in compact JSON
    with no raw newlines; so both are read off the front without decoding the frame
    again (it is encoded once for every subscriber).
    """
    if frame.startswith(_EVENT_PREFIX):
        event_id = frame[len(_EVENT_PREFIX) : frame.index('"', len(_EVENT_PREFIX))]
        return f"id: {event_id}\nevent: event\ndata: {frame}\n\n"
    kind = frame[len(_TYPE_PREFIX) : frame.index('"', len(_TYPE_PREFIX))]
    return f"event: {kind}\ndata: {frame}\n\n"


def chunk(data: bytes) -> bytes:
    """`data` as one chunk of an HTTP/1.1 chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def text_frame(text: str) -> bytes:
    """One unmasked, final WebSocket text frame carrying `text`."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def wire_bytes(frames: list[str], batch: bool) -> bytes:
    """The bytes that send `frames`: a frame each, or one JSON array (`?batch=1`)."""
    if batch and len(frames) > 1:
        return text_frame("[" + ",".join(frames) + "]")
    return b"".join(text_frame(frame) for frame in frames)


class Flusher:
    """Collects the connections that have frames to write, and writes them all once the
    loop's current turn is done."""

    def __init__(self) -> None:
        self._marked: list[Connection] = []
        self._scheduled = False
        self._frames: dict[str, bytes] = {}  # frame text -> its wire bytes, per flush
        self._batches: dict[tuple[str, ...], bytes] = {}
        self._messages: dict[str, bytes] = {}  # frame text -> its SSE message
        self._html: dict[str, str] = {}  # frame text -> its SSE message, HTML streams
        self.fragments: Fragments | None = None  # the app's, for HTML streams

    def mark(self, conn: Connection) -> None:
        if conn.marked:
            return
        conn.marked = True
        self._marked.append(conn)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        marked, self._marked, self._scheduled = self._marked, [], False
        try:
            for conn in marked:
                conn.marked = False
                conn.flush(self)
        finally:
            self._frames.clear()
            self._batches.clear()
            self._messages.clear()
            self._html.clear()

    def wire(self, frames: list[str], batch: bool) -> bytes:
        """`wire_bytes`, each frame (and each batch) built once per flush."""
        if batch and len(frames) > 1:
            key = tuple(frames)
            data = self._batches.get(key)
            if data is None:
                data = self._batches[key] = text_frame("[" + ",".join(frames) + "]")
            return data
        cache = self._frames
        parts = []
        for frame in frames:
            data = cache.get(frame)
            if data is None:
                data = cache[frame] = text_frame(frame)
            parts.append(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def sse(self, frames: list[str]) -> bytes:
        """The SSE messages of `frames` as one chunk, each message built once per flush."""
        cache = self._messages
        parts = []
        for frame in frames:
            data = cache.get(frame)
            if data is None:
                data = cache[frame] = sse_message(frame).encode("utf-8")
            parts.append(data)
        return chunk(b"".join(parts))

    def sse_html(self, frames: list[str]) -> bytes:
        """`sse` for a stream of HTML fragments (see fragments.py)."""
        if self.fragments is None:
            return self.sse(frames)
        return chunk(self.fragments.messages(frames, self._html).encode("utf-8"))
