"""A client that stops reading, closed for its budget (`realtime.send_queue_bytes`), over a
real server with raw clients that stop and start reading at will (issue 15, item 8).

Once its socket takes no more, what is queued for it waits; past the budget the
connection is closed as too slow (4429). That close used to wait behind the bytes the
client had not taken: the writer waited for the socket first, gave up after
CLOSE_TIMEOUT and returned without a close, so Hypercorn closed with 1011 (internal
error), which clients do not back off from; and as Hypercorn closes a connection only
once it has written everything it holds, a client that never read again kept its TCP
connection and its buffer on the server for ever.

Now the close goes out at once, after what is in flight: a client that reads again in
time gets that, then 4429 and its reason (SSE: the `close` message); one that does not
is dropped (a TCP reset) once the close has had CLOSE_TIMEOUT to get out. A client that
leaves half-way (its side shut, what the server holds for it never read) is dropped
CLOSE_TIMEOUT later too.

Run twice by `make test`: frames written straight to the sockets, and through the ASGI
send (RUNTIME_TESTS_FAST_PATH=off).
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from quart import Quart

from runtime.adapters import hypercorn
from runtime.db import database
from runtime.demo import Message
from runtime.realtime.connections.connection import TOO_SLOW_REASON, Connection
from runtime.realtime.transports import serving
from runtime.users import User
from tests.raw_websocket import CLOSE, TEXT, RawWebSocket, client_frame
from tests.sse_client import EventStreamParser, SSEMessage
from tests.support import TIMEOUT, LiveServer

QUEUE_BYTES = 1 << 20
PAD = "x" * 60_000  # a custom event of about 60 KB
TCP_CLOSE = 7  # the kernel's state of a connection that was reset (linux/tcp_states.h)


@pytest.fixture
def realtime_settings() -> dict[str, object]:
    return {"send_queue_bytes": QUEUE_BYTES, "message_rate_limit": "1000/second"}


@pytest.fixture
def server(app: Quart, users: dict[str, User]) -> Iterator[LiveServer]:
    with database.atomic():  # a snapshot of these is about 120 KB
        for i in range(200):
            Message.create(text=f"{i} " + "x" * 480, author=users["alice"])
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def patient_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server waits longer for a closing connection's client than it takes this
    client to come back and read: whatever the machine's load, it is not dropped first."""
    monkeypatch.setattr(serving, "CLOSE_TIMEOUT", TIMEOUT * 2)


# -- the server's side -----------------------------------------------------------------


def the_connection(server: LiveServer) -> Connection:
    """The one connection (its client has read `connected`, so it is served)."""
    conns: list[Connection] = server.call(lambda: list(server.broker.connections))
    assert len(conns) == 1
    return conns[0]


def closing(server: LiveServer, conn: Connection) -> threading.Event:
    """Set once `conn` closes (its transport hears of it through `on_close`)."""
    closed = threading.Event()

    def watch() -> None:
        transports = conn.on_close
        assert transports is not None

        def on_close() -> None:
            transports()
            closed.set()

        conn.on_close = on_close

    server.call(watch)
    return closed


def unsent(server: LiveServer, conn: Connection) -> int:
    """Bytes the server's socket holds for the client that the kernel has not taken."""
    held = server.call(lambda: hypercorn.unsent(conn.sink._send))  # type: ignore[union-attr]
    assert held is not None
    return int(held)


def fill_until_full(server: LiveServer, conn: Connection) -> int:
    """Custom events for this connection alone until its socket holds more than its
    high-water mark (the client does not read): from then on what is queued waits. The
    number of events sent, all of them written.

    A broadcast from this thread returns once the event is fanned out; what writes it
    (the flusher, or the connection's task) was called for then, before `unsent` asks."""
    for n in range(1, 400):
        server.app.realtime_broadcast("fill", {"n": n, "pad": PAD}, client_ids=[conn.id])  # type: ignore[attr-defined]
        if unsent(server, conn) > hypercorn.HIGH_WATER:
            return n
    raise AssertionError("the socket never filled up")


def closed_as_too_slow(server: LiveServer, conn: Connection) -> None:
    assert server.call(lambda: (conn.close_code, conn.close_reason)) == (4429, TOO_SLOW_REASON)
    assert unsent(server, conn) > hypercorn.HIGH_WATER  # closed while the socket was full


def holds_none(server: LiveServer) -> None:
    """Until the server has let go of every connection."""
    assert asyncio.run(server.run(server.broker.connections.wait_idle(TIMEOUT)))


# -- the client's side -----------------------------------------------------------------


def reset(sock: socket.socket) -> None:
    """Until the server resets the TCP connection, which it does CLOSE_TIMEOUT after it
    gave up (or at once, if it gave up before). Only a reset ends it for a client that
    does not read: a graceful close waits for the client to take what comes before it."""
    poller = select.poll()
    poller.register(sock, select.POLLERR | select.POLLHUP)
    assert poller.poll((serving.CLOSE_TIMEOUT + TIMEOUT) * 1000), "not dropped"
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_CLOSE


# -- WebSocket -------------------------------------------------------------------------


def stop_reading_and_overflow(server: LiveServer, ws: RawWebSocket) -> int:
    """The client reads `connected`, then stops reading while custom events fill its
    socket and then its snapshot replies pass the budget; the number of events its
    socket took."""
    opcode, payload = ws.recv_frame()
    assert opcode == TEXT and json.loads(payload)["type"] == "connected"
    conn = the_connection(server)
    closed = closing(server, conn)
    filled = fill_until_full(server, conn)
    for i in range(12):  # 12 snapshots of 120 KB: the budget is 1 MiB
        subscribe = {"type": "subscribe", "id": i, "pattern": "messages", "snapshot": True}
        ws.sock.sendall(client_frame(TEXT, json.dumps(subscribe).encode()))
    assert closed.wait(TIMEOUT), "not closed"
    closed_as_too_slow(server, conn)
    return filled


def fills_then_the_end(ws: RawWebSocket) -> tuple[list[int], bytes | None]:
    """Read on: the numbers of the custom events, then the close frame's payload (None if
    the connection was reset first: the frames cut short by the reset are not counted)."""
    seen: list[int] = []
    while True:
        try:
            opcode, payload = ws.recv_frame()
        except ConnectionResetError:
            return seen, None
        if opcode == CLOSE:
            return seen, payload
        frame = json.loads(payload)
        assert frame["name"] == "fill", frame  # no snapshot reply got out
        seen.append(frame["data"]["n"])


@pytest.mark.usefixtures("patient_server")
def test_a_reader_that_stopped_hears_4429_after_what_was_in_flight(server: LiveServer) -> None:
    with RawWebSocket(server.port) as ws:
        filled = stop_reading_and_overflow(server, ws)
        # It reads again: the events the socket held, whole and in order, then the close.
        seen, close = fills_then_the_end(ws)
        assert seen == list(range(1, filled + 1))  # all it had written, none it had queued
        assert close is not None, "reset"
        code, reason = struct.unpack("!H", close[:2])[0], close[2:].decode()
        assert (code, reason) == (4429, TOO_SLOW_REASON)
        ws.sock.sendall(client_frame(CLOSE, close[:2]))  # its answer
        assert ws.closed_by_server()
    holds_none(server)


def test_a_reader_that_never_reads_again_is_dropped_not_told_1011(server: LiveServer) -> None:
    with RawWebSocket(server.port) as ws:
        filled = stop_reading_and_overflow(server, ws)
        holds_none(server)  # the server gave up on it
        # Reading now, it gets what had reached it, events whole and in order, then the
        # reset: no close, as it never took one (not the 1011 Hypercorn used to add).
        seen, close = fills_then_the_end(ws)
        assert close is None, f"closed with {struct.unpack('!H', close[:2])[0]}"
        assert seen == list(range(1, len(seen) + 1)) and len(seen) <= filled
        reset(ws.sock)


def test_a_client_that_leaves_without_reading_is_dropped(server: LiveServer) -> None:
    with RawWebSocket(server.port) as ws:
        opcode, _ = ws.recv_frame()
        assert opcode == TEXT
        fill_until_full(server, the_connection(server))
        ws.sock.shutdown(socket.SHUT_WR)  # it leaves, and what the server holds stays there
        holds_none(server)
        reset(ws.sock)


# -- SSE -------------------------------------------------------------------------------


class RawEventStream:
    """GET /realtime/subscribe on a plain socket: the HTTP/1.1 head, then the chunked
    body's messages, read only when asked."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.sendall(
            f"GET /realtime/subscribe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"transfer-encoding: chunked" in head.lower(), head
        self.parser = EventStreamParser()
        self.ended = False  # the body's last chunk came

    def __enter__(self) -> RawEventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def messages(self) -> Iterator[SSEMessage]:
        """The body's messages, as they come, until the body ends."""
        while not self.ended:
            for message in self.parser.feed(self._chunk()):
                if message.dispatched:
                    yield message

    def _chunk(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        size_line, _, self.buffer = self.buffer.partition(b"\r\n")
        size = int(size_line, 16)
        while len(self.buffer) < size + 2:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size + 2 :]
        self.ended = size == 0
        return data

    def _fill(self) -> None:
        data = self.sock.recv(2**16)
        if not data:
            raise EOFError(f"closed by the server; unread: {self.buffer[:80]!r}")
        self.buffer += data


def stop_reading_and_overflow_sse(server: LiveServer, sse: RawEventStream) -> int:
    """The client reads `connected`, then stops reading while custom events fill its
    socket and then pass the budget; the number of events its socket took."""
    first = next(sse.messages())
    assert first.event == "connected"
    conn = the_connection(server)
    filled = fill_until_full(server, conn)
    for n in range(1000, 1040):  # 40 more of 60 KB: past the budget of 1 MiB
        server.app.realtime_broadcast("fill", {"n": n, "pad": PAD}, client_ids=[conn.id])  # type: ignore[attr-defined]
        if server.call(lambda: conn.closing):
            break
    closed_as_too_slow(server, conn)
    return filled


def sse_fills_then_the_end(sse: RawEventStream) -> tuple[list[int], SSEMessage | None]:
    """Read on: the numbers of the custom events, then the `close` message (None if the
    connection was reset first)."""
    seen: list[int] = []
    try:
        for message in sse.messages():
            if message.event == "close":
                return seen, message
            assert message.json["name"] == "fill", message
            seen.append(message.json["data"]["n"])
    except ConnectionResetError:
        return seen, None
    raise AssertionError("the stream ended without a close message")


@pytest.mark.usefixtures("patient_server")
def test_an_sse_reader_that_stopped_gets_the_close_message_after_what_was_in_flight(
    server: LiveServer,
) -> None:
    with RawEventStream(server.port) as sse:
        filled = stop_reading_and_overflow_sse(server, sse)
        seen, close = sse_fills_then_the_end(sse)
        assert seen == list(range(1, filled + 1))  # all it had written, none it had queued
        assert close is not None, "reset"
        assert close.json == {"type": "close", "code": 4429, "reason": TOO_SLOW_REASON}
        assert list(sse.messages()) == [] and sse.ended  # and the body's end after it
    holds_none(server)


def test_an_sse_reader_that_never_reads_again_is_dropped(server: LiveServer) -> None:
    with RawEventStream(server.port) as sse:
        filled = stop_reading_and_overflow_sse(server, sse)
        holds_none(server)
        seen, close = sse_fills_then_the_end(sse)
        assert close is None, close
        assert seen == list(range(1, len(seen) + 1)) and len(seen) <= filled
        reset(sse.sock)


def test_an_sse_client_that_leaves_without_reading_is_dropped(server: LiveServer) -> None:
    with RawEventStream(server.port) as sse:
        assert next(sse.messages()).event == "connected"
        fill_until_full(server, the_connection(server))
        sse.sock.shutdown(socket.SHUT_WR)
        holds_none(server)
        reset(sse.sock)
