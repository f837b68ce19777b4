"""A minimal HTTP/1.1 client on asyncio streams: keep-alive requests, and the head of
a streamed response. Just enough for the load client to publish and log in without
a heavy client library on its core."""

from __future__ import annotations

import asyncio

__all__ = ["HttpConnection", "HttpError", "Response", "request_head"]

IO_TIMEOUT = 30.0


class HttpError(Exception):
    pass


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def request_head(
    method: str, path: str, port: int, headers: dict[str, str] | None = None, length: int = 0
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HttpError(f"not an HTTP response: {status_line!r}")
    headers: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


class HttpConnection:
    """One keep-alive connection to 127.0.0.1:`port`; reopened when the server closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", self.port), IO_TIMEOUT
        )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Response:
        for attempt in (1, 2):  # a keep-alive connection the server timed out: once more
            if self._writer is None:
                await self._open()
            try:
                return await asyncio.wait_for(
                    self._exchange(method, path, body, headers), IO_TIMEOUT
                )
            except (ConnectionError, asyncio.IncompleteReadError, HttpError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None
    ) -> Response:
        assert self._reader is not None and self._writer is not None
        self._writer.write(request_head(method, path, self.port, headers, len(body)) + body)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status, response_headers = parse_head(head[:-4])
        if "content-length" in response_headers:
            data = await self._reader.readexactly(int(response_headers["content-length"]))
        elif response_headers.get("transfer-encoding") == "chunked":
            data = await self._read_chunked()
        else:
            data = b""
        if response_headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, response_headers, data)

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        data = bytearray()
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return bytes(data)
            data += await self._reader.readexactly(size)
            await self._reader.readexactly(2)
