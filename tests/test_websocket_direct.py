"""Frames written straight to the socket (runtime/websocket_direct.py, realtime/flusher.py):
the frames are what RFC 6455 says, the Quart and Hypercorn internals the path relies on
are still there, and over a real server connections use it, or not, as they should."""

from __future__ import annotations

import inspect

import pytest
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.ws_stream import WSStream
from quart.asgi import ASGIWebsocketConnection
from quart.wrappers.websocket import Websocket
from wsproto.frame_protocol import FrameProtocol, Opcode

from runtime.realtime.flusher import Flusher, text_frame, wire_bytes
from runtime.users import User
from tests.realtime_client import Client
from tests.support import LiveServer


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
    flusher = Flusher()
    assert flusher.wire(frames, True) is flusher.wire(list(frames), True)  # built once
    assert flusher.wire(frames[:1], False) is flusher.wire(frames[:1], False)


def test_the_hypercorn_internals_relied_on_are_still_there() -> None:
    """runtime/websocket_direct.py follows a WebSocket's ASGI send to Hypercorn's
    transport (Hypercorn is pinned in pyproject.toml). If this fails after an upgrade,
    re-check the chain in `DirectSocket.of` against the new sources, then move the pin."""
    hint = "; re-check runtime/websocket_direct.py against the new version"
    assert "self.app_send" in inspect.getsource(WSStream.handle), "WSStream.app_send" + hint
    assert "self.send(Data(" in inspect.getsource(WSStream._send_wsproto_event), hint
    assert "self.send(RawData(" in inspect.getsource(H11Protocol.stream_send), hint
    send = inspect.getsource(TCPServer.protocol_send)
    assert "self.writer.write(event.data)" in send, "TCPServer.protocol_send" + hint
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
    async with await Client.connect(server) as plain:
        sinks = server.call(lambda: [c.sink for c in server.broker.connections])
        assert [type(s).__name__ for s in sinks] == ["DirectSocket"]
        await plain.ok_subscribe("messages")


@pytest.mark.parametrize("realtime_settings", [{"websocket_compression": True}])
async def test_a_compressed_connection_sends_through_quart(
    server: LiveServer, users: dict[str, User]
) -> None:
    from runtime.demo import Message

    async with await Client.connect(server, compression="deflate") as compressed:
        assert compressed.ws.protocol.extensions, "permessage-deflate was negotiated"
        assert server.call(lambda: [c.sink for c in server.broker.connections]) == [None]
        await compressed.ok_subscribe("messages")
        Message.create(text="squeezed", author=users["alice"])
        assert (await compressed.recv_type("event"))["record"]["text"] == "squeezed"
