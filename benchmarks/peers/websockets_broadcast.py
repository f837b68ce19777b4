"""Peer: a bare `websockets` server fanning out with `websockets.broadcast()`.

The websockets server speaks only GET (the upgrade), so publishing has a port of its
own: a few lines of HTTP/1.1 on asyncio streams, in the same process and loop."""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import ServerConnection, broadcast, serve

subscribers: set[ServerConnection] = set()


async def ws(connection: ServerConnection) -> None:
    subscribers.add(connection)
    try:
        await connection.send('{"type":"subscribed"}')
        await connection.wait_closed()
    finally:
        subscribers.discard(connection)


async def publisher(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """POST /publish, keep-alive: the body is the frame."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            frame = (await reader.readexactly(length)).decode()
            broadcast(subscribers, frame)
            writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main() -> None:
    publish_server = await asyncio.start_server(publisher, "127.0.0.1", 0, backlog=1024)
    async with serve(ws, "127.0.0.1", 0, compression=None, max_queue=None, backlog=1024) as server:
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        publish_port = publish_server.sockets[0].getsockname()[1]
        print(f"port={port} publish_port={publish_port}", flush=True)
        await asyncio.Future()  # until terminated


if __name__ == "__main__":
    asyncio.run(main())
