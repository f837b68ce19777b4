"""Inbound WebSocket messages bounded in memory, inside wsproto (the WebSocket protocol
library under Hypercorn).

Hypercorn 0.18 collects a message in `ws_stream.WebsocketBuffer` and compares it with
`websocket_max_message_size` only after appending each chunk. Past the limit it sends
close 1009 but neither empties the buffer nor stops parsing: the rest of the message
piles up (a 200 MB frame costs 200 MB), and `WSStream._handle_events` stops at the first
message chunk after that, leaving the client's close reply unread, so the connection
hangs. wsproto inflates each permessage-deflate chunk whole, however large it becomes.

Here the limit is kept inside wsproto, before Hypercorn's buffer sees a byte:

- every frame header is checked as soon as wsproto has parsed it, so a frame that would
  take its message past the limit is refused before its payload is read;
- permessage-deflate inflates a message up to the limit and no further;
- a refused message fails the connection (RFC 6455, 7.1.7): the client gets a close
  frame with 1009, Hypercorn closes the TCP connection at once, and whatever else the
  client sends is dropped unread.

`bounded_connection()` makes such a connection; Hypercorn gets it from the handshake
that runtime/adapters/hypercorn.py installs. It also keeps `sendable` (`open_test`) as
wsproto assigns its `_state`, for the fan-out's check of each frame it writes. wsproto
is pinned in pyproject.toml; `tests/adapters/test_wsproto.py` checks the wsproto
internals relied on.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Generator

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import CloseConnection, Event
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits
from wsproto.handshake import server_extensions_handshake

__all__ = ["bounded_connection", "compresses", "is_open", "open_test"]


def bounded_connection(
    max_message_size: int, offers: str | list[str] | None
) -> tuple[Connection, bytes | None]:
    """A server connection whose inbound messages are bounded to `max_message_size`
    bytes, both as they arrive (frame headers included) and, with permessage-deflate,
    once inflated; and the `Sec-WebSocket-Extensions` value accepting the client's
    `offers` of permessage-deflate, if it was offered (None: compression off)."""
    extensions: list[Extension] = [_MessageSizeLimit(max_message_size)]
    accepted: bytes | None = None
    if offers:
        deflate = _BoundedDeflate(max_message_size)
        accepted = server_extensions_handshake(offers, [deflate])
        if accepted:
            extensions.append(deflate)
    return _BoundedConnection(extensions), accepted


def _frame_size(payload_length: int) -> int:
    """A client frame's size on the wire: two bytes, the extended length if any, the
    masking key every client frame carries, the payload."""
    extended = 0 if payload_length < 126 else 2 if payload_length < 2**16 else 8
    return 2 + extended + 4 + payload_length


class _MessageSizeLimit(Extension):
    """Refuses a message whose frames add up past `max_size` bytes, header by header.

    Not negotiated, always on: wsproto shows every enabled extension each frame header
    before it reads the payload, the earliest point to say no. A frame counts with its
    header, so that a message of endless empty fragments is bounded too.
    """

    name = "runtime-message-size-limit"

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0  # the current message's frames read so far
        self.frame = 0  # the frame being read; 0 for a control frame

    def enabled(self) -> bool:
        return True

    def offer(self) -> bool:
        return False

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        # wsproto calls this again for the same header when the masking key has not
        # arrived yet: remember the frame, count it once it is complete.
        self.frame = 0 if opcode.iscontrol() else _frame_size(payload_length)
        if self.size + self.frame > self.max_size:
            return CloseReason.MESSAGE_TOO_BIG
        return RsvBits(False, False, False)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if self.frame:  # a control frame (a ping between fragments) neither ends nor adds
            self.size = 0 if fin else self.size + self.frame
            self.frame = 0
        return None


class _BoundedDeflate(PerMessageDeflate):
    """permessage-deflate, server side, that inflates a message to `max_size` bytes at most.

    Negotiation and compressing what the server sends are wsproto's; the inbound side is
    rewritten around ``decompress(data, max_length)`` (wsproto's inflates each chunk
    whole). It also keeps a message's compression flag across a ping between its
    fragments, which wsproto's forgets.
    """

    def __init__(self, max_size: int) -> None:
        super().__init__()
        self.max_size = max_size
        self.inflater: zlib._Decompress | None = None
        self.compressed = False  # the current message is
        self.control = False  # the current frame is a control frame
        self.inflated = 0  # bytes of the current message inflated so far

    def frame_inbound_header(
        self,
        proto: FrameDecoder | FrameProtocol,
        opcode: Opcode,
        rsv: RsvBits,
        payload_length: int,
    ) -> CloseReason | RsvBits:
        if rsv.rsv1 and (opcode.iscontrol() or opcode is Opcode.CONTINUATION):
            return CloseReason.PROTOCOL_ERROR
        self.control = opcode.iscontrol()
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:  # a message begins
            self.compressed = rsv.rsv1
            self.inflated = 0
        return RsvBits(True, False, False)

    def frame_inbound_payload_data(
        self, proto: FrameDecoder | FrameProtocol, data: bytes
    ) -> bytes | CloseReason:
        if self.control or not self.compressed:
            return data
        return self._inflate(data)

    def frame_inbound_complete(
        self, proto: FrameDecoder | FrameProtocol, fin: bool
    ) -> bytes | CloseReason | None:
        if self.control or not fin or not self.compressed:
            return None
        self.compressed = False
        # The end of a message: the four bytes every sender strips (RFC 7692, 7.2.1).
        tail = self._inflate(b"\x00\x00\xff\xff")
        if self.client_no_context_takeover:
            self.inflater = None
        return tail

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        if self.inflater is None:
            self.inflater = zlib.decompressobj(-self.client_max_window_bits)
        room = self.max_size - self.inflated
        try:
            # One byte more than there is room for tells a message that is too big;
            # the input left over stays in `unconsumed_tail`, never inflated.
            data = self.inflater.decompress(data, room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self.inflated += len(data)
        if self.inflated > self.max_size:
            return CloseReason.MESSAGE_TOO_BIG
        return data


class _BoundedConnection(Connection):
    """wsproto's server connection, failing the way RFC 6455 asks.

    wsproto reports a frame it refuses (too big, malformed) as a CloseConnection event
    but leaves the connection OPEN, and Hypercorn answers a CloseConnection with a close
    frame only in REMOTE_CLOSING: it would drop the TCP connection without telling the
    client why. Once it has refused a frame, this connection says REMOTE_CLOSING until
    its close frame is sent, and ignores the rest of what the client sends.
    """

    def __init__(self, extensions: list[Extension]) -> None:
        self._refused = False
        # Whether data may still be sent (`is_open`), kept as the state changes: fan-out
        # reads it for every frame it writes, where `state` is three calls.
        self.sendable = True
        self.deflate = any(isinstance(e, PerMessageDeflate) for e in extensions)
        super().__init__(ConnectionType.SERVER, extensions)

    # wsproto keeps its state in `_state`, assigned in __init__, send(), receive_data()
    # and events(): a property here, so that `sendable` follows each assignment.
    @property
    def _state(self) -> ConnectionState:
        return self._current_state

    @_state.setter
    def _state(self, state: ConnectionState) -> None:
        self._current_state = state
        self.sendable = state is ConnectionState.OPEN and not self._refused

    @property
    def state(self) -> ConnectionState:
        state = super().state
        if self._refused and state is ConnectionState.OPEN:
            return ConnectionState.REMOTE_CLOSING
        return state

    def receive_data(self, data: bytes | None) -> None:
        if not self._refused:
            super().receive_data(data)

    def events(self) -> Generator[Event, None, None]:
        for event in super().events():
            if isinstance(event, CloseConnection) and super().state is ConnectionState.OPEN:
                self._refused = True
                self.sendable = False
                if event.code == CloseReason.MESSAGE_TOO_BIG:
                    event = CloseConnection(event.code, "message too big")
            yield event


def compresses(connection: Connection) -> bool:
    """Whether frames sent on `connection` may need compressing (permessage-deflate was
    negotiated, or it is not a connection made here and so cannot be known)."""
    return not isinstance(connection, _BoundedConnection) or connection.deflate


def is_open(connection: Connection) -> bool:
    """Whether data may still be sent on `connection` (no close begun)."""
    return connection.state is ConnectionState.OPEN


def open_test(connection: Connection) -> Callable[[], bool]:
    """`is_open` of `connection` as a call without arguments; for a connection made
    here, one that runs no Python code (fan-out makes it once per frame written)."""
    if isinstance(connection, _BoundedConnection):
        return functools.partial(getattr, connection, "sendable")
    return functools.partial(is_open, connection)
