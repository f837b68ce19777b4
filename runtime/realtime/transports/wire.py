"""The transports' wire formats, as bytes and text: WebSocket text frames, SSE messages,
HTTP/1.1 chunks. Plain functions, no I/O.

Server-to-client WebSocket frames are not masked (RFC 6455, 5.1) and an SSE message is
the same text for every subscriber, so the sinks build a frame's bytes once per flush,
however many connections get them.
"""

from __future__ import annotations

import re
import struct

from ..protocol import encode_batch

__all__ = ["chunk", "frame_message", "sse_message", "text_frame", "wire_bytes"]

_EVENT_PREFIX = '{"type":"event","id":"'
_TYPE_PREFIX = '{"type":"'
_LINE_BREAK = re.compile("\r\n|\r|\n")  # where an SSE reader ends a line


def sse_message(data: str, *, event: str | None = None, id: str | None = None) -> str:
    """One SSE message: every message of every stream is framed here, the JSON frames,
    the HTML fragments and the last words of a closing stream alike.

    A reader ends a line at CRLF, LF or a bare CR (the HTML standard's event stream
    interpretation), so `data` becomes one `data:` line for each line of it, split at
    all three: whatever text it holds, it is read back as this one message, each of its
    line breaks an LF (SSE cannot carry a CR in data). `event` and `id` are one line
    each: a line break in either is a ValueError, as is NUL in `id` (readers ignore such
    an id), never a line that would start a field or a message of its own.
    """
    head = ""
    if id is not None:
        if "\n" in id or "\r" in id or "\0" in id:
            raise ValueError(f"an SSE id cannot hold a line break or NUL: {id!r}")
        head = f"id: {id}\n"
    if event is not None:
        if "\n" in event or "\r" in event:
            raise ValueError(f"an SSE event name cannot hold a line break: {event!r}")
        head = f"{head}event: {event}\n"
    if "\n" in data or "\r" in data:
        lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
        return f"{head}{lines}\n"
    return f"{head}data: {data}\n\n"


def frame_message(frame: str) -> str:
    """One encoded frame as an SSE message: `event:` its type, `data:` the frame, and
    events carry `id:`, so that EventSource resumes with Last-Event-ID by itself.

    `protocol.encode` writes "type" first and, for events, "id" second, in compact JSON
    (no raw line breaks); so both are read off the front without decoding the frame
    again (it is encoded once for every subscriber).
    """
    if frame.startswith(_EVENT_PREFIX):
        event_id = frame[len(_EVENT_PREFIX) : frame.index('"', len(_EVENT_PREFIX))]
        return sse_message(frame, event="event", id=event_id)
    kind = frame[len(_TYPE_PREFIX) : frame.index('"', len(_TYPE_PREFIX))]
    return sse_message(frame, event=kind)


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
