"""A real SSE client for the tests: httpx streaming, messages parsed per the spec.

`EventStreamParser` is the WHATWG HTML standard's "event stream interpretation"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation),
step by step, as browsers read a stream: UTF-8 with one leading BOM dropped, a line
ended by CRLF, LF or a bare CR (even across two reads), fields split at the first colon
and one space after it dropped, `data:` lines joined with LF, an `id:` holding NUL
ignored, the last event id kept from message to message. (httpx's `aiter_lines` is not
that: it also ends lines at U+2028, U+0085, form feeds and the like, and it would make
two messages of what a browser reads as one.)
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import TIMEOUT, ServerProcess, ThreadedServer

__all__ = ["EventStreamParser", "SSEMessage", "SSEStream", "ids_of", "stream"]

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass
class SSEMessage:
    """One block of the stream, up to its blank line. `event`, `data` and
    `last_event_id` are what a browser's MessageEvent would carry (`type`, `data`,
    `lastEventId`), if it dispatches one (`dispatched`: only with a data buffer). `id` is
    the block's own `id:` field, if it has one; `retry` its `retry:`; `comments` its
    comment lines."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)
    last_event_id: str = ""
    dispatched: bool = False

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class EventStreamParser:
    """Bytes of an event stream in, the blocks that a blank line ended out."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False  # a BOM first in the stream is dropped
        self._line = ""  # the start of a line not yet ended
        self._after_cr = False  # the last read ended with CR: an LF first in the next is its pair
        self.last_event_id = ""  # the "last event ID buffer": kept across messages
        self._block = SSEMessage()
        self._seen = False  # the block has a line
        self._data: list[str] = []  # the "data buffer", as its lines
        self._event = ""  # the "event type buffer"

    def feed(self, data: bytes) -> list[SSEMessage]:
        text = self._decoder.decode(data)
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        blocks: list[SSEMessage] = []
        text, start = self._line + text, 0
        for end in _LINE_END.finditer(text):
            block = self._process(text[start : end.start()])
            if block is not None:
                blocks.append(block)
            start = end.end()
        self._line = text[start:]
        return blocks

    def _process(self, line: str) -> SSEMessage | None:
        if line == "":
            return self._dispatch()
        self._seen = True
        if line.startswith(":"):
            self._block.comments.append(line[1:].removeprefix(" "))
            return None
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:  # an id holding NUL is ignored
            self.last_event_id = self._block.id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._block.retry = int(value)
        return None  # any other field, or value, is ignored

    def _dispatch(self) -> SSEMessage | None:
        block, seen = self._block, self._seen
        block.last_event_id = self.last_event_id
        if self._data:  # the data buffer is not empty (each line added an LF)
            block.dispatched = True
            block.data = "\n".join(self._data)  # the last LF removed
            block.event = self._event or "message"
        self._block, self._seen, self._data, self._event = SSEMessage(), False, [], ""
        return block if seen else None


class SSEStream:
    """An open GET /realtime/subscribe stream."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks: AsyncIterator[bytes] = response.aiter_bytes()
        self._parser = EventStreamParser()
        self._blocks: list[SSEMessage] = []

    async def next(self, *, keep_comments: bool = False) -> SSEMessage:
        """The next message (or, with keep_comments, a comment-only block)."""
        return await asyncio.wait_for(self._next(keep_comments), TIMEOUT)

    async def _next(self, keep_comments: bool) -> SSEMessage:
        while True:
            while self._blocks:
                block = self._blocks.pop(0)
                if block.dispatched or block.retry is not None or keep_comments:
                    return block
            chunk = await anext(self._chunks, None)
            if chunk is None:
                raise EOFError("stream ended")
            self._blocks.extend(self._parser.feed(chunk))

    async def frame(self) -> dict[str, Any]:
        """The next frame, checking that `event:` names its type and events carry `id:`."""
        message = await self.next()
        frame = message.json
        assert message.event == frame["type"], (message.event, frame)
        if frame["type"] == "event":
            assert message.id == frame["id"]
        else:
            assert message.id is None
        return frame


@contextlib.asynccontextmanager
async def stream(
    server: ThreadedServer | ServerProcess,
    query: str = "",
    *,
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
    http: httpx.AsyncClient | None = None,
) -> AsyncIterator[SSEStream]:
    """GET /realtime/subscribe{query} as a stream, past its first message (`retry:`);
    on a client of its own, or on `http` (making one costs tens of milliseconds)."""
    all_headers = {"Accept": "text/event-stream", **(headers or {})}
    if cookie:
        all_headers["Cookie"] = cookie
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT)
            )
        url = f"{server.url}/realtime/subscribe{query}"
        response = await stack.enter_async_context(http.stream("GET", url, headers=all_headers))
        assert response.status_code == 200, await response.aread()
        sse = SSEStream(response)
        first = await sse.next()
        assert first.retry == 2000 and first.data == ""  # retry: comes first
        yield sse


def ids_of(connected: dict[str, Any]) -> dict[str, str]:
    """What a POST that changes a stream names it by: its id, and its key (the secret
    only the stream's client reads, which a visitor's stream needs)."""
    assert connected["type"] == "connected", connected
    return {"connection_id": connected["connection_id"], "stream_key": connected["stream_key"]}
