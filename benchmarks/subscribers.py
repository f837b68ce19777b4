"""The load client's subscribers: WebSocket (picows) and SSE (a bare asyncio protocol).

Both only count and time what arrives and hand event frames to a sink; they decode no
JSON on the way (an event is found by its `"type":"event"` bytes), so one core of
them out-receives any server under test. Servers speak one of two dialects: the
runtime's (`connected`, then our `subscribe` frames, then `subscribed` replies, pings
to answer) or a peer's (`subscribed` once registered, then frames).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from .httpwire import parse_head, request_head
from .sse import ChunkedDecoder, SseParser

__all__ = ["EventSink", "SseSubscriber", "Subscriber", "WsSubscriber", "open_all"]

EVENT = b'"type":"event"'
SUBSCRIBED = b'"type":"subscribed"'
CONNECTED = b'"type":"connected"'
PING = b'"type":"ping"'
ERROR = b'"type":"error"'
PONG = b'{"type":"pong"}'
CONNECT_TIMEOUT = 20.0


class EventSink(Protocol):
    def events(self, subscriber: Subscriber, data: bytes, count: int, now: float) -> None: ...


class Subscriber:
    """What both transports share: readiness, and counts of what happened."""

    def __init__(self, sink: EventSink, subscribe: Sequence[bytes]) -> None:
        self.sink = sink
        self.subscribe = list(subscribe)  # our subscribe frames; empty for a peer
        self.expected = max(1, len(subscribe))  # `subscribed` replies to be ready
        self.subscribed = 0
        self.errors: list[bytes] = []
        self.pings = 0
        self.connected = False
        self.close_code: int | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.last_event_id: str | None = None  # for resuming (soak)
        self.closing = False  # we closed it on purpose

    def _replies(self, data: bytes) -> None:
        if SUBSCRIBED in data:
            self.subscribed += data.count(SUBSCRIBED)
            if self.subscribed >= self.expected and not self.ready.done():
                self.ready.set_result(None)
        if ERROR in data:
            self.errors.append(data[:300])
            if len(self.errors) + self.subscribed >= self.expected and not self.ready.done():
                self.ready.set_result(None)

    def _lost(self) -> None:
        self.connected = False
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready ({self.close_code})"))


class WsSubscriber(Subscriber, WSListener):  # type: ignore[misc]
    def __init__(self, sink: EventSink, subscribe: Sequence[bytes] = ()) -> None:
        Subscriber.__init__(self, sink, subscribe)
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.connected = True

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.CLOSE:
            self.close_code = frame.get_close_code().value
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
            return
        if kind is not WSMsgType.TEXT and kind is not WSMsgType.BINARY:
            return  # protocol pings are answered by picows itself
        data = frame.get_payload_as_bytes()
        events = data.count(EVENT)
        if events:
            self.sink.events(self, data, events, time.perf_counter())
            if events == 1 and data[0] == 0x7B:  # one frame: nothing else in it
                return
        if PING in data:
            self.pings += 1
            transport.send(WSMsgType.TEXT, PONG)
        if CONNECTED in data and self.subscribe:
            for request in self.subscribe:
                transport.send(WSMsgType.TEXT, request)
        self._replies(data)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._lost()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close(WSCloseCode.OK)
            self.transport.disconnect()


class SseSubscriber(Subscriber, asyncio.Protocol):
    """GET `path` with Accept: text/event-stream, read as it streams."""

    def __init__(
        self, sink: EventSink, port: int, path: str, headers: dict[str, str] | None = None
    ) -> None:
        Subscriber.__init__(self, sink, ())
        self._request = request_head(
            "GET", path, port, {"Accept": "text/event-stream", **(headers or {})}
        )
        self._head = b""
        self._chunked: ChunkedDecoder | None = None
        self._body_started = False
        self._parser = SseParser()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport.
        self.transport = transport
        self.connected = True
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if not self._body_started:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            status, headers = parse_head(self._head[:end])
            data, self._head = self._head[end + 4 :], b""
            self._body_started = True
            if status != 200:
                self.errors.append(f"HTTP {status}".encode())
                self.close()
                return
            if headers.get("transfer-encoding") == "chunked":
                self._chunked = ChunkedDecoder()
        if self._chunked is not None:
            data = self._chunked.feed(data)
        now = time.perf_counter()
        for message in self._parser.feed(data):
            if message.event == "event":
                self.last_event_id = message.id
                self.sink.events(self, message.data, 1, now)
            elif message.event == "close":
                self.close_code = int(message.data.split(b'"code":')[1].split(b",")[0])
            else:
                self._replies(message.data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


async def _open_one(subscriber: Subscriber, url: str, port: int, headers: dict[str, str]) -> None:
    if isinstance(subscriber, WsSubscriber):
        await ws_connect(
            lambda: subscriber,
            url,
            websocket_handshake_timeout=CONNECT_TIMEOUT,
            extra_headers=headers or None,
            enable_auto_pong=True,
        )
    else:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: subscriber, "127.0.0.1", port)
    await subscriber.ready


async def open_all(
    subscribers: Sequence[Subscriber],
    url: str,
    port: int,
    *,
    headers: dict[str, str] | None = None,
    concurrency: int = 100,
    timeout: float = 120.0,
) -> list[str]:
    """Connect every subscriber (a few at a time) and wait until each is ready; returns
    the failures' descriptions (an empty list when all are ready)."""
    gate = asyncio.Semaphore(concurrency)
    failures: list[str] = []

    async def one(subscriber: Subscriber) -> None:
        async with gate:
            try:
                await asyncio.wait_for(_open_one(subscriber, url, port, headers or {}), 30.0)
            except Exception as error:  # counted and reported, the rest go on
                failures.append(f"{type(error).__name__}: {error}"[:200])

    await asyncio.wait_for(asyncio.gather(*(one(s) for s in subscribers)), timeout)
    return failures
