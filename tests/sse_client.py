"""A real SSE client for the tests: httpx streaming, messages parsed per the spec."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import TIMEOUT, ThreadedServer

__all__ = ["SSEMessage", "SSEStream", "stream"]


@dataclass
class SSEMessage:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class SSEStream:
    """An open GET /realtime/subscribe stream."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines: AsyncIterator[str] = response.aiter_lines()

    async def next(self, *, keep_comments: bool = False) -> SSEMessage:
        """The next message (or, with keep_comments, a comment-only block)."""
        return await asyncio.wait_for(self._next(keep_comments), TIMEOUT)

    async def _next(self, keep_comments: bool) -> SSEMessage:
        message = SSEMessage()
        seen = False
        async for line in self._lines:
            if line == "":
                if seen and (message.data or message.retry is not None or keep_comments):
                    return message
                message, seen = SSEMessage(), False
                continue
            seen = True
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                message.comments.append(value)
            elif name == "data":
                message.data = f"{message.data}\n{value}" if message.data else value
            elif name == "event":
                message.event = value
            elif name == "id":
                message.id = value
            elif name == "retry":
                message.retry = int(value)
        raise EOFError("stream ended")

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
    server: ThreadedServer,
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
