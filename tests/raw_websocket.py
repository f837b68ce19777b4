"""WebSocket frames built by hand, and a client on a plain socket that sends them.

For what no WebSocket library sends: a header declaring 200 MB, endless fragments,
a permessage-deflate bomb. Every wait is bounded by TIMEOUT.
"""

from __future__ import annotations

import base64
import os
import select
import socket
import struct
import zlib
from collections.abc import Iterable, Iterator

from tests.support import TIMEOUT

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "PING",
    "TEXT",
    "RawWebSocket",
    "client_frame",
    "client_header",
    "deflate_bomb",
    "deflate_message",
    "mask",
    "repeat",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING = 0x0, 0x1, 0x2, 0x8, 0x9
MASK = b"\x5a\x17\xc3\x08"


def client_header(opcode: int, length: int, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A masked client frame header declaring `length` bytes (the mask is `MASK`)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 2**16:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    return header + MASK


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    return client_header(opcode, len(payload), fin=fin, rsv1=rsv1) + mask(payload)


def mask(payload: bytes) -> bytes:
    """`payload` masked with `MASK`, to be sent at a multiple of 4 bytes into a frame."""
    key = (MASK * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(
        len(payload), "big"
    )


def deflate_message(data: bytes) -> bytes:
    """`data` compressed as one permessage-deflate message (RFC 7692, 7.2.1)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    compressed = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert compressed.endswith(b"\x00\x00\xff\xff")
    return compressed[:-4]


def deflate_bomb(megabytes: int) -> bytes:
    """Raw deflate data that inflates to `megabytes` MiB of "a", about 1 KiB per MiB.

    After a full flush the compressor starts afresh, so every further MiB of "a"
    compresses to the same bytes: the data is built by repetition, not by compressing.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    mebibyte = b"a" * 2**20
    first = compressor.compress(mebibyte) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(mebibyte) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + again * (megabytes - 1)


class RawWebSocket:
    """A WebSocket client on a blocking socket: handshake, then bytes as the test wants."""

    def __init__(self, port: int, *, deflate: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
        self.sock.sendall(
            f"GET /realtime/subscribe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n".encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101"), lines[0]
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        self.extensions = headers.get("sec-websocket-extensions")
        self.inflater = zlib.decompressobj(-15)  # for the server's compressed frames

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recv_frame(self) -> tuple[int, bytes]:
        """The next server frame (servers do not mask) as (opcode, payload), inflated."""
        while len(self.buffer) < 2:
            self._fill()
        length = self.buffer[1] & 0x7F
        start = 2 + {126: 2, 127: 8}.get(length, 0)
        while len(self.buffer) < start:
            self._fill()
        if length >= 126:
            length = int.from_bytes(self.buffer[2:start], "big")
        while len(self.buffer) < start + length:
            self._fill()
        opcode, compressed = self.buffer[0] & 0x0F, self.buffer[0] & 0x40
        payload, self.buffer = self.buffer[start : start + length], self.buffer[start + length :]
        if compressed:  # a whole message: the server does not fragment
            payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
        return opcode, payload

    def stream(self, chunks: Iterable[bytes]) -> int:
        """Send `chunks` as a client that ignores the server would; the bytes sent.

        Stops early only when the server closes the TCP connection.
        """
        sent = 0
        for chunk in chunks:
            try:
                self.sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        return sent

    def close_frame(self) -> tuple[int, str]:
        """Read up to the server's close frame: its (code, reason)."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == CLOSE:
                return int.from_bytes(payload[:2], "big"), payload[2:].decode()

    def closed_by_server(self) -> bool:
        """Whether the server closed the TCP connection (within TIMEOUT) after its last frame."""
        if self.buffer:
            return False
        readable, _, _ = select.select([self.sock], [], [], TIMEOUT)
        if not readable:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:  # it closed with our data unread: that is a close too
            return True

    def _fill(self) -> None:
        data = self.sock.recv(2**16)
        if not data:
            raise ConnectionError(f"closed by the server; unread: {self.buffer[:80]!r}")
        self.buffer += data


def repeat(chunk: bytes, total: int) -> Iterator[bytes]:
    """`chunk` as many times as it takes to send `total` bytes (a bounded stream)."""
    for _ in range(-(-total // len(chunk))):
        yield chunk
