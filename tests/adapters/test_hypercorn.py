"""Hypercorn's insides as runtime/adapters/hypercorn.py relies on them (Hypercorn is
pinned in pyproject.toml): the chain from an ASGI send to the socket that the fast path
writes to, the handshake class that bounds inbound messages, the lifespan that tells
Hypercorn from other servers; and, over a real server, a compressed connection written
through the ASGI send (tests/integration/test_fast_path.py shows the others written
directly, or not, as configured). If a test here fails after an upgrade, re-check the adapter
against Hypercorn's new sources, then move the pin."""

from __future__ import annotations

import inspect
import json
import logging
import select
from typing import Any

import h11
import pytest
from hypercorn.asyncio.lifespan import Lifespan
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol import ws_stream
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.protocol.ws_stream import WSStream
from wsproto.frame_protocol import FrameProtocol

from runtime.adapters import hypercorn
from runtime.config import RealtimeConfig
from runtime.realtime.transports.serving import fast_path_report
from runtime.realtime.transports.wire import chunk, text_frame
from runtime.users import User
from tests.raw_websocket import RawWebSocket
from tests.realtime_client import Client
from tests.support import TIMEOUT, LiveServer

HINT = "; re-check runtime/adapters/hypercorn.py against the new version"
LIMIT = 1000


def test_the_direct_socket_internals_relied_on_are_still_there() -> None:
    """`DirectSocket.of` follows a WebSocket's ASGI send to Hypercorn's transport."""
    hint = HINT
    assert "self.app_send" in inspect.getsource(WSStream.handle), "WSStream.app_send" + hint
    assert "self.send(Data(" in inspect.getsource(WSStream._send_wsproto_event), hint
    assert "self.send(RawData(" in inspect.getsource(H11Protocol.stream_send), hint
    send = inspect.getsource(TCPServer.protocol_send)
    assert "self.writer.write(event.data)" in send, "TCPServer.protocol_send" + hint
    # An SSE response: HTTPStream.app_send sends the headers at once, the body as h11
    # Data events, which h11 frames as chunks for an HTTP/1.1 client.
    app_send = inspect.getsource(HTTPStream.app_send)
    assert "self.state = ASGIHTTPState.RESPONSE" in app_send, "HTTPStream.app_send" + hint
    assert "Body(stream_id=self.stream_id" in app_send, "HTTPStream.app_send" + hint
    framed = h11.Connection(h11.SERVER)
    framed.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    framed.next_event()
    framed.send(h11.Response(status_code=200, headers=[]))
    assert framed.send(h11.Data(data=b"abc")) == chunk(b"abc"), "h11 chunks bodies otherwise"
    # wsproto sends data frames without remembering anything about them (no state).
    sent = FrameProtocol(client=False, extensions=[]).send_data("x", fin=True)
    assert sent == text_frame("x"), "wsproto frames data differently" + hint


def test_the_internals_a_connections_end_relies_on_are_still_there() -> None:
    """A close cuts short a send that waits on a client that stopped reading, then
    `abort` drops a connection whose client never takes what it holds
    (runtime/realtime/transports/serving.py)."""
    hint = HINT
    send = inspect.getsource(TCPServer.protocol_send)
    # A send writes its frame in one call, then waits: cut short, it wrote all or none.
    write, drain = send.find("self.writer.write(event.data)"), send.find("self.writer.drain()")
    assert 0 <= write < drain, "TCPServer.protocol_send" + hint
    # A write pending when the connection is dropped fails, and is taken as its end.
    assert "except (ConnectionError, RuntimeError)" in send, "TCPServer.protocol_send" + hint
    assert "self.protocol.handle(Closed())" in send, "TCPServer.protocol_send" + hint
    # Hypercorn closes the TCP connection once it has written everything it holds: for a
    # client that never reads, never (hence `abort`).
    assert "await self.writer.wait_closed()" in inspect.getsource(TCPServer._close), hint
    # A close sent is a close, even if its send is cut short: once the app returns,
    # Hypercorn adds a 1011 of its own only to a connection that was not closed.
    app_send = inspect.getsource(WSStream.app_send)
    closed = app_send.find("self.state = ASGIWebsocketState.CLOSED")
    assert 0 <= closed < app_send.find("CloseConnection(", closed), "WSStream.app_send" + hint
    assert "elif self.state == ASGIWebsocketState.CONNECTED:" in app_send, hint


def test_the_handshake_internals_relied_on_are_still_there() -> None:
    """runtime/adapters/hypercorn.py replaces Hypercorn's handshake class to bound inbound
    messages. If this fails after an upgrade, re-check `install` and `handshake_class`
    against the new sources, then move the pin."""
    hint = HINT

    def params(fn: object) -> list[str]:
        return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]

    # Hypercorn looks its handshake class up in ws_stream on every request...
    handle = inspect.getsource(ws_stream.WSStream.handle)
    assert "Handshake(event.headers, event.http_version)" in handle, "WSStream.handle" + hint
    hypercorns = hypercorn._HypercornHandshake  # ws_stream.Handshake, before install()
    assert params(hypercorns.__init__) == ["self", "headers", "http_version"], hint
    assert params(hypercorns.accept) == ["self", "subprotocol", "additional_headers"], hint
    offered = hypercorns([(b"sec-websocket-extensions", b"permessage-deflate")], "1.1")
    assert offered.extensions == ["permessage-deflate"], "Handshake.extensions" + hint
    # ...and answers a CloseConnection with a close frame in REMOTE_CLOSING, then ends
    # the stream, which closes the TCP connection.
    events = inspect.getsource(ws_stream.WSStream._handle_events)
    for needed in ("ConnectionState.REMOTE_CLOSING", "event.response()", "StreamClosed"):
        assert needed in events, f"WSStream._handle_events no longer has {needed}{hint}"


def test_install_replaces_hypercorns_handshake_each_time_from_hypercorns_own() -> None:
    original = ws_stream.Handshake
    ws_stream.Handshake = hypercorn._HypercornHandshake  # type: ignore[misc]
    try:
        assert not hypercorn.installed()
        hypercorn.install(max_message_size=LIMIT, compression=True)
        first = ws_stream.Handshake
        hypercorn.install(max_message_size=LIMIT, compression=True)
        assert ws_stream.Handshake is not first
        assert ws_stream.Handshake.__mro__[1] is hypercorn._HypercornHandshake
        assert hypercorn.installed()
    finally:
        ws_stream.Handshake = original  # type: ignore[misc]


def test_the_lifespan_tells_hypercorn_from_other_servers() -> None:
    """Hypercorn's asyncio lifespan sends with a bound method of its Lifespan."""
    assert "self.asgi_send" in inspect.getsource(Lifespan.handle_lifespan), HINT
    lifespan = Lifespan.__new__(Lifespan)  # its send, as the app gets it; nothing runs
    assert hypercorn.serves(lifespan.asgi_send)

    async def other_servers_send(message: Any) -> None:
        pass

    assert not hypercorn.serves(other_servers_send)


@pytest.mark.parametrize(
    ("settings", "handshake_installed", "on_hypercorn", "expected"),
    [
        ({}, True, True, None),
        ({"fast_path": False}, True, True, (logging.INFO, "realtime.fast_path = false")),
        ({}, True, False, (logging.WARNING, "not served by Hypercorn")),
        ({"fast_path": False}, True, False, (logging.WARNING, "not served by Hypercorn")),
        ({}, False, True, (logging.WARNING, "served by the hypercorn command")),
        (
            {"websocket_compression": True},
            True,
            True,
            (logging.INFO, "realtime.websocket_compression = true"),
        ),
    ],
)
def test_the_log_says_at_start_up_when_the_fast_path_is_off_and_why(
    settings: dict[str, Any],
    handshake_installed: bool,
    on_hypercorn: bool,
    expected: tuple[int, str] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handshake = hypercorn._HypercornHandshake
    if handshake_installed:  # as install() does
        handshake = hypercorn.handshake_class(max_message_size=LIMIT, compression=False)
    monkeypatch.setattr(ws_stream, "Handshake", handshake)

    async def other_servers_send(message: Any) -> None:
        pass

    send = Lifespan.__new__(Lifespan).asgi_send if on_hypercorn else other_servers_send
    report = fast_path_report(RealtimeConfig(**settings), send)
    if expected is None:
        assert report is None
    else:
        assert report is not None
        assert report[0] == expected[0] and expected[1] in report[1], report


@pytest.mark.parametrize("realtime_settings", [{"websocket_compression": True}])
async def test_a_compressed_connection_sends_through_quart(
    server: LiveServer, users: dict[str, User]
) -> None:
    from runtime.demo import Message

    async with await Client.connect(server, compression="deflate") as compressed:
        assert compressed.ws.protocol.extensions, "permessage-deflate was negotiated"
        sinks = server.call(lambda: [c.sink for c in server.broker.connections])
        assert [(type(s).__name__, s.direct) for s in sinks] == [("WebSocketSink", False)]
        await compressed.ok_subscribe("messages")
        Message.create(text="squeezed", author=users["alice"])
        assert (await compressed.recv_type("event"))["record"]["text"] == "squeezed"


def test_unsent_and_abort_reach_the_socket_behind_a_send(server: LiveServer) -> None:
    """`unsent` tells what a connection holds, `abort` resets it; neither for another
    server's send."""

    async def other_servers_send(message: Any) -> None:
        pass

    assert hypercorn.unsent(other_servers_send) is None
    assert hypercorn.abort(other_servers_send) is False
    with RawWebSocket(server.port) as ws:
        assert json.loads(ws.recv_frame()[1])["type"] == "connected"
        sends = server.call(lambda: [c.sink._send for c in server.broker.connections])
        assert len(sends) == 1
        assert server.call(hypercorn.unsent, sends[0]) == 0  # the client took everything
        assert server.call(hypercorn.abort, sends[0]) is True
        poller = select.poll()
        poller.register(ws.sock, select.POLLERR | select.POLLHUP)
        assert poller.poll(TIMEOUT * 1000), "not reset"
        with pytest.raises(ConnectionResetError):  # a reset, not a graceful close
            ws.sock.recv(1)
