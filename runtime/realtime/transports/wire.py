"""The transports' wire formats, as bytes and text: WebSocket text frames, SSE messages,
HTTP/1.1 chunks. Plain functions, no I/O.

Server-to-client WebSocket frames are not masked (RFC 6455, 5.1) and an SSE message is
the same text for every subscriber, so the sinks build a frame's bytes once per flush,
however many connections get them.
"""

from __future__ import annotations

import struct

from ..protocol import encode_batch

__all__ = ["chunk", "html_message", "sse_message", "text_frame", "wire_bytes"]

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


def html_message(name: str, html: str) -> str:
    """An SSE message named `name` carrying `html` (one `data:` line per line of it)."""
    data = "".join(f"data: {line}\n" for line in html.split("\n"))
    return f"event: {name}\n{data}\n"


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
        return text_frame(encode_batch(frames))
    return b"".join(text_frame(frame) for frame in frames)
