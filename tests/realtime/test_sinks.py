"""The transports' wire formats and sinks, I/O-free: WebSocket frames as RFC 6455 says
(read back by wsproto as a client), SSE messages and chunks, and the bytes of a flush
built once for every connection that gets them."""

from __future__ import annotations

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

from runtime.realtime.transports.sse import SSESink
from runtime.realtime.transports.websocket import WebSocketSink
from runtime.realtime.transports.wire import chunk, frame_message, text_frame, wire_bytes
from tests.realtime.fake_sockets import RecordingSocket, unused_send


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


@pytest.mark.parametrize("batch", [False, True])
def test_the_bytes_of_a_flush_are_built_once_for_every_connection(batch: bool) -> None:
    frames = ['{"a":1}', '{"b":"ü"}']
    cache: dict[object, dict[object, object]] = {}
    ours, theirs = RecordingSocket(), RecordingSocket()
    for socket in (ours, theirs):
        WebSocketSink(unused_send, socket, batch=batch).write(list(frames), cache)  # type: ignore[arg-type]
    assert ours.written == theirs.written == [wire_bytes(frames, batch)]
    if batch:
        assert ours.written[0] is theirs.written[0]
    events = ['{"type":"event","id":"r-1"}', '{"type":"pong"}']
    streams = [RecordingSocket(), RecordingSocket()]
    for socket in streams:
        SSESink(unused_send, socket).write(list(events), cache)  # type: ignore[arg-type]
    expected = chunk("".join(frame_message(frame) for frame in events).encode())
    assert streams[0].written == streams[1].written == [expected]
