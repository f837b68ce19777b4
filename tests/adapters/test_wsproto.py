"""Bounded inbound messages, I/O-free: client bytes into the connection the handshake
makes (runtime/adapters/wsproto.py, behind runtime/adapters/hypercorn.py's handshake).

The last test pins what runtime/adapters/wsproto.py relies on inside wsproto; it is the
one to read when an upgrade breaks this module (tests/adapters/test_hypercorn.py pins
Hypercorn's side).
"""

from __future__ import annotations

import inspect
import tracemalloc
import zlib
from collections.abc import Iterable

import pytest
from wsproto.connection import Connection, ConnectionState
from wsproto.events import CloseConnection, Event, Message, Ping, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import FrameDecoder

from runtime.adapters.hypercorn import handshake_class
from runtime.adapters.wsproto import is_open, open_test
from tests.raw_websocket import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    TEXT,
    client_frame,
    client_header,
    deflate_bomb,
    deflate_message,
    repeat,
)

LIMIT = 1000
MiB = 2**20


def accept(
    *, limit: int = LIMIT, compression: bool = False, offer: str | None = "permessage-deflate"
) -> tuple[Connection, dict[bytes, bytes]]:
    """The server side of a new connection, and the handshake response's headers."""
    headers = [
        (b"host", b"127.0.0.1"),
        (b"connection", b"Upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-version", b"13"),
    ]
    if offer is not None:
        headers.append((b"sec-websocket-extensions", offer.encode()))
    handshake = handshake_class(max_message_size=limit, compression=compression)(headers, "1.1")
    assert handshake.is_valid()
    status, response_headers, connection = handshake.accept(None, [])
    assert status == 101
    return connection, dict(response_headers)


def feed(connection: Connection, *chunks: bytes) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks:
        connection.receive_data(chunk)
        events.extend(connection.events())
    return events


def text(events: Iterable[Event]) -> str:
    return "".join(e.data for e in events if isinstance(e, TextMessage))


def refused(events: list[Event], code: int = 1009) -> CloseConnection:
    """The last event closes with `code`, and the connection owes the client its close frame."""
    assert events and isinstance(events[-1], CloseConnection), events[-3:]
    close = events[-1]
    assert close.code == code, close
    return close


def test_a_message_up_to_the_limit_on_the_wire_passes_one_byte_more_is_refused() -> None:
    fits = LIMIT - 2 - 2 - 4  # header, 16-bit length, masking key
    connection, _ = accept()
    assert text(feed(connection, client_frame(TEXT, b"a" * fits))) == "a" * fits
    assert text(feed(connection, client_frame(TEXT, b"b" * fits))) == "b" * fits  # per message
    events = feed(connection, client_frame(TEXT, b"c" * (fits + 1)))
    assert text(events) == ""  # nothing of it was read
    close = refused(events)
    assert close.reason == "message too big"


def test_refusing_fails_the_connection_with_a_close_frame() -> None:
    connection, _ = accept()
    close = refused(feed(connection, client_header(TEXT, 200 * MiB)))
    # What Hypercorn does with it: answer in REMOTE_CLOSING, then close the stream.
    assert connection.state is ConnectionState.REMOTE_CLOSING
    data = connection.send(close.response())
    assert data == b"\x88\x11\x03\xf1message too big"
    assert connection.state is ConnectionState.CLOSED


def test_what_fan_out_reads_of_a_connection_follows_its_state() -> None:
    # DirectSocket writes a frame only while `open_test` says so: each way a close
    # begins turns it off, exactly when `is_open` (the state) does.
    def both(connection: Connection) -> tuple[bool, bool]:
        return open_test(connection)(), is_open(connection)

    closing_here, _ = accept()
    assert both(closing_here) == (True, True)
    closing_here.send(CloseConnection(1000))
    assert both(closing_here) == (False, False)

    closed_by_client, _ = accept()
    feed(closed_by_client, client_frame(CLOSE, b"\x03\xe8"))
    assert closed_by_client.state is ConnectionState.REMOTE_CLOSING
    assert both(closed_by_client) == (False, False)

    refusing, _ = accept()
    refused(feed(refusing, client_header(TEXT, 200 * MiB)))
    assert both(refusing) == (False, False)

    dropped, _ = accept()
    dropped.receive_data(None)
    assert both(dropped) == (False, False)


def test_a_huge_frame_is_refused_at_its_header_and_the_rest_dropped_unread() -> None:
    connection, _ = accept()
    header = client_header(TEXT, 200 * MiB)
    # Refused on the 10 bytes of length, before the masking key has even arrived.
    refused(feed(connection, header[:10]))
    tracemalloc.start()
    try:
        assert feed(connection, header[10:], *repeat(b"a" * MiB, 50 * MiB)) == []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB, peak  # one chunk at a time, none of it kept


def test_fragments_add_up_and_pings_between_them_do_not_reset_the_count() -> None:
    connection, _ = accept()
    fragment = b"a" * 100  # 106 bytes each on the wire
    frames = [client_frame(TEXT, fragment, fin=False)]
    frames += [client_frame(PING, b"p")] + [client_frame(CONTINUATION, fragment, fin=False)] * 20
    events = feed(connection, *frames)
    close = refused(events)
    assert len(text(events)) == 9 * 100  # 9 * 106 = 954 fits, 10 * 106 does not
    assert sum(isinstance(e, Ping) for e in events) == 1
    assert close.reason == "message too big"


def test_a_message_of_empty_fragments_is_bounded_too() -> None:
    connection, _ = accept()
    empty = client_frame(CONTINUATION, b"", fin=False)
    events = feed(connection, client_frame(BINARY, b"", fin=False), *[empty] * 1000)
    refused(events)
    assert len([e for e in events if isinstance(e, Message)]) == LIMIT // 6


def test_a_header_split_across_reads_is_counted_once() -> None:
    connection, _ = accept()
    frame = client_frame(TEXT, b"a" * 600)  # twice would be past the limit
    events = feed(connection, *(frame[i : i + 1] for i in range(len(frame))))
    assert text(events) == "a" * 600
    assert not any(isinstance(e, CloseConnection) for e in events)


@pytest.mark.parametrize(
    "frame, code",
    [
        (b"\x81\x02hi", 1002),  # unmasked
        (b"\xa1" + client_frame(TEXT, b"hi")[1:], 1002),  # RSV2, which nothing uses
        (client_frame(TEXT, b"\xff\xfe"), 1007),  # not UTF-8
        (client_frame(TEXT, b"\xff" * 10, rsv1=True), 1007),  # not deflate
    ],
)
def test_other_protocol_errors_get_their_close_frame_too(frame: bytes, code: int) -> None:
    connection, _ = accept(compression=True)
    close = refused(feed(connection, frame), code)
    assert connection.send(close.response()).startswith(b"\x88")
    assert connection.state is ConnectionState.CLOSED


def test_compression_is_negotiated_only_when_on() -> None:
    _, headers = accept(compression=False)
    assert b"sec-websocket-extensions" not in headers
    _, headers = accept(compression=True, offer=None)
    assert b"sec-websocket-extensions" not in headers
    _, headers = accept(compression=True)
    assert headers[b"sec-websocket-extensions"] == b"permessage-deflate"
    _, headers = accept(compression=True, offer="permessage-deflate; client_no_context_takeover")
    assert headers[b"sec-websocket-extensions"] == b"permessage-deflate; client_no_context_takeover"


@pytest.mark.parametrize(
    "offer", ["permessage-deflate", "permessage-deflate; client_max_window_bits"]
)
def test_compressed_messages_inflate_and_share_their_context(offer: str) -> None:
    connection, headers = accept(compression=True, offer=offer)
    assert headers[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    for word in ("hello", "hello again", "hello"):
        data = compressor.compress(word.encode() * 10) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert text(feed(connection, client_frame(TEXT, data[:-4], rsv1=True))) == word * 10
    assert text(feed(connection, client_frame(TEXT, b"plain"))) == "plain"


def test_a_ping_between_compressed_fragments_keeps_the_message_compressed() -> None:
    connection, _ = accept(compression=True)
    data = deflate_message(b"fragmented " * 50)
    frames = [
        client_frame(TEXT, data[:10], fin=False, rsv1=True),
        client_frame(PING, b"p"),
        client_frame(CONTINUATION, data[10:]),
    ]
    assert text(feed(connection, *frames)) == "fragmented " * 50


def test_a_bomb_is_inflated_up_to_the_limit_and_no_further() -> None:
    limit = 256 * 1024  # the default: 4 * realtime.max_message_size
    connection, _ = accept(limit=limit, compression=True)
    bomb = client_frame(TEXT, deflate_bomb(200), rsv1=True)  # 203 KiB, inflating to 200 MiB
    assert len(bomb) < limit
    tracemalloc.start()
    try:
        events = feed(connection, bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    refused(events)
    assert text(events) == ""
    # The frame is copied a few times over by wsproto (buffered, sliced, unmasked; the
    # server feeds it 64 KiB at a time), and inflated once up to the limit: about
    # 1.4 MiB, where inflating it whole takes 400.
    assert peak < 6 * len(bomb) + 2 * limit, peak


def test_a_bomb_across_fragments_is_inflated_up_to_the_limit() -> None:
    connection, _ = accept(limit=100_000, compression=True)
    bomb = deflate_bomb(64)  # 66 KiB for 64 MiB
    frames = [client_frame(BINARY, bomb[:1000], fin=False, rsv1=True)]
    frames += [
        client_frame(CONTINUATION, bomb[i : i + 1000], fin=False) for i in range(1000, 60_000, 1000)
    ]
    tracemalloc.start()
    try:
        events = feed(connection, *frames)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    refused(events)
    assert sum(len(e.data) for e in events if isinstance(e, Message)) <= 100_000
    assert peak < 4 * 100_000, peak


def test_a_compressed_message_inflating_to_the_limit_passes_one_byte_more_is_refused() -> None:
    connection, _ = accept(compression=True)
    exact = deflate_message(b"a" * LIMIT)
    assert text(feed(connection, client_frame(TEXT, exact, rsv1=True))) == "a" * LIMIT
    refused(feed(connection, client_frame(TEXT, deflate_message(b"a" * (LIMIT + 1)), rsv1=True)))


def test_rsv1_is_refused_on_continuations_and_without_compression() -> None:
    connection, _ = accept(compression=True)
    data = deflate_message(b"x" * 100)
    frames = [client_frame(TEXT, data[:5], fin=False, rsv1=True)]
    refused(feed(connection, *frames, client_frame(CONTINUATION, data[5:], rsv1=True)), 1002)
    connection, _ = accept(compression=False)
    refused(feed(connection, client_frame(TEXT, data, rsv1=True)), 1002)


def test_the_wsproto_internals_relied_on_are_still_there() -> None:
    """runtime/adapters/wsproto.py reaches into wsproto (pinned in pyproject.toml).

    If this fails after an upgrade, read the module's docstring, re-check each point
    below against the new sources, then move the pin.
    """
    hint = "; re-check runtime/adapters/wsproto.py against the new version"

    def params(fn: object) -> list[str]:
        return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]

    # wsproto shows extensions each frame header before reading its payload (the tests
    # above prove it), through these hooks.
    hooks = {
        "frame_inbound_header": ["self", "proto", "opcode", "rsv", "payload_length"],
        "frame_inbound_payload_data": ["self", "proto", "data"],
        "frame_inbound_complete": ["self", "proto", "fin"],
    }
    for name, expected in hooks.items():
        assert params(getattr(Extension, name)) == expected, f"Extension.{name}{hint}"
    assert "extension_processing" in inspect.getsource(FrameDecoder.parse_header), hint
    for name in ("client_max_window_bits", "client_no_context_takeover"):
        assert hasattr(PerMessageDeflate(), name), f"PerMessageDeflate.{name}{hint}"
    # Connection: `state` a property that send() consults, a refused frame reported as a
    # CloseConnection event.
    assert isinstance(inspect.getattr_static(Connection, "state"), property), hint
    assert "self.state" in inspect.getsource(Connection.send), "Connection.send" + hint
    assert "except ParseFailed" in inspect.getsource(Connection.events), hint
    # Its state lives in `_state`, assigned wherever it changes (`sendable` follows it):
    # at open, on a close sent or received, and when the stream ends.
    for method, states in {
        Connection.__init__: ["OPEN"],
        Connection.send: ["CLOSED", "LOCAL_CLOSING"],
        Connection.receive_data: ["CLOSED"],
        Connection.events: ["CLOSED", "REMOTE_CLOSING"],
    }.items():
        source = inspect.getsource(method)
        for state in states:
            assert f"self._state = ConnectionState.{state}" in source, method.__name__ + hint
