"""A minimal, incremental reader of an HTTP/1.1 Server-Sent Events body.

Bytes in through `feed()`, messages out: no I/O, so the load client stays cheap and
this stays testable. Chunked transfer coding (what Hypercorn uses for a streamed
response) is undone by `ChunkedDecoder` first.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ChunkedDecoder", "SseMessage", "SseParser"]


@dataclass(frozen=True, slots=True)
class SseMessage:
    event: str  # "message" when the message names none
    data: bytes
    id: str | None = None


class ChunkedDecoder:
    """Undo `Transfer-Encoding: chunked`, whatever the read boundaries."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._remaining = 0  # bytes of the current chunk still to come
        self._skip = 0  # CRLF bytes after a chunk still to drop
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        while self._buffer and not self.finished:
            if self._skip:
                dropped = min(self._skip, len(self._buffer))
                del self._buffer[:dropped]
                self._skip -= dropped
                continue
            if self._remaining:
                taken = bytes(self._buffer[: self._remaining])
                del self._buffer[: len(taken)]
                out += taken
                self._remaining -= len(taken)
                if not self._remaining:
                    self._skip = 2
                continue
            end = self._buffer.find(b"\r\n")
            if end < 0:
                break
            size_text = bytes(self._buffer[:end]).split(b";", 1)[0].strip()
            del self._buffer[: end + 2]
            size = int(size_text, 16)
            if size == 0:
                self.finished = True
                break
            self._remaining = size
        return bytes(out)


class SseParser:
    """Split an SSE stream into messages. Comment lines (`: ping`) are not messages;
    `retry:` alone is not either."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[SseMessage]:
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        blocks = (self._partial + data).split(b"\n\n")
        self._partial = blocks.pop()
        messages = []
        for block in blocks:
            message = _message(block)
            if message is not None:
                messages.append(message)
        return messages


def _message(block: bytes) -> SseMessage | None:
    event = "message"
    event_id: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode()
        elif name == b"id":
            event_id = value.decode()
    if not data:
        return None
    return SseMessage(event, b"\n".join(data), event_id)
