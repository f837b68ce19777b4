"""Frames written straight to the socket (runtime/direct_sockets.py, realtime/flusher.py):
the frames are what RFC 6455 says, the Quart and Hypercorn internals the path relies on
are still there, and over a real server connections use it, or not, as they should."""

from __future__ import annotations

import inspect

import h11
import httpx
import pytest
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.protocol.ws_stream import WSStream
from quart.asgi import ASGIWebsocketConnection
from quart.wrappers.websocket import Websocket
from wsproto.frame_protocol import FrameProtocol, Opcode

from runtime.realtime.transports.sse import SSESink
from runtime.realtime.transports.websocket import WebSocketSink
from runtime.realtime.transports.wire import chunk, sse_message, text_frame, wire_bytes
from runtime.users import User
from tests.realtime_client import Client
from tests.support import TIMEOUT, LiveServer


def _parse_server_frames(data: bytes) -> list[tuple[Opcode, str]]:
    """What a client reads from these bytes (wsproto, as a client, parses them)."""
    protocol = FrameProtocol(client=True, extensions=[])
    protocol.receive_bytes(data)
    return [(frame.opcode, frame.payload) for frame in protocol.received_frames()]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frames_at_each_length_encoding(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)  # several bytes per character
    assert _parse_server_frames(text_frame(text)) == [(Opcode.TEXT, text)]


def test_several_frames_and_batches() -> None:
    frames = ['{"a":1}', '{"b":"ü"}']
    assert _parse_server_frames(wire_bytes(frames, batch=False)) == [
        (Opcode.TEXT, frames[0]),
        (Opcode.TEXT, frames[1]),
    ]
    assert _parse_server_frames(wire_bytes(frames, batch=True)) == [
        (Opcode.TEXT, '[{"a":1},{"b":"ü"}]')
    ]


class _Socket:
    """What a sink writes to, as a DirectSocket: here, a list of the writes."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> None:
        self.written.append(data)


async def _unused_send(message: object) -> None:
    raise AssertionError("a direct sink writes its frames to the socket")


@pytest.mark.parametrize("batch", [False, True])
def test_the_bytes_of_a_flush_are_built_once_for_every_connection(batch: bool) -> None:
    frames = ['{"a":1}', '{"b":"ü"}']
    cache: dict[object, dict[object, object]] = {}
    ours, theirs = _Socket(), _Socket()
    for socket in (ours, theirs):
        WebSocketSink(_unused_send, socket, batch=batch).write(list(frames), cache)  # type: ignore[arg-type]
    assert ours.written == theirs.written == [wire_bytes(frames, batch)]
    if batch:
        assert ours.written[0] is theirs.written[0]
    events = ['{"type":"event","id":"r-1"}', '{"type":"pong"}']
    streams = [_Socket(), _Socket()]
    for socket in streams:
        SSESink(_unused_send, socket).write(list(events), cache)  # type: ignore[arg-type]
    expected = chunk("".join(sse_message(frame) for frame in events).encode())
    assert streams[0].written == streams[1].written == [expected]


def test_the_hypercorn_internals_relied_on_are_still_there() -> None:
    """runtime/direct_sockets.py follows a WebSocket's ASGI send to Hypercorn's
    transport (Hypercorn is pinned in pyproject.toml). If this fails after an upgrade,
    re-check the chain in `DirectSocket.of` against the new sources, then move the pin."""
    hint = "; re-check runtime/direct_sockets.py against the new version"
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


def test_quart_builds_its_websocket_object_as_realtime_does() -> None:
    """runtime/realtime/websocket.py builds Quart's websocket object for the handshake's
    checks from the ASGI scope, as Quart does (Quart is pinned in pyproject.toml)."""
    made = inspect.getsource(ASGIWebsocketConnection._create_websocket_from_scope)
    for part in ('headers["Remote-Addr"]', 'self.scope["query_string"]', "websocket_class("):
        assert part in made, f"Quart reads the scope differently now: {part}"
    params = list(inspect.signature(Websocket.__init__).parameters)
    assert params[1:8] == [
        "path",
        "query_string",
        "scheme",
        "headers",
        "root_path",
        "http_version",
        "subprotocols",
    ], "Quart's Websocket takes other arguments now"


async def test_connections_write_directly_unless_compressing(
    server: LiveServer, users: dict[str, User]
) -> None:
    from runtime.demo import Message
    from tests.sse_client import SSEStream

    headers = {"Accept": "text/event-stream"}
    async with (
        await Client.connect(server) as plain,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
        http.stream("GET", "/realtime/subscribe?pattern=messages", headers=headers) as response,
    ):
        stream = SSEStream(response)
        await stream.next()  # retry
        await stream.frame()  # connected
        await stream.frame()  # subscribed
        sinks = server.call(lambda: [c.sink for c in server.broker.connections])
        assert [(type(s).__name__, s.direct) for s in sinks] == [
            ("WebSocketSink", True),
            ("SSESink", True),
        ]
        await plain.ok_subscribe("messages")
        Message.create(text="straight", author=users["alice"])
        assert (await plain.recv_type("event"))["record"]["text"] == "straight"
        assert (await stream.frame())["record"]["text"] == "straight"


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
