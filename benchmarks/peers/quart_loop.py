"""Peer: Quart on Hypercorn with a hand-written per-connection send loop (a set of
queues; `POST /publish` puts the frame in each), and the same over SSE on `/sse`.
Hypercorn runs as the runtime's own server does: the standard asyncio loop."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, Response, request, websocket

app = Quart(__name__)
subscribers: set[asyncio.Queue[str]] = set()
EVENT_PREFIX = '{"type":"event","id":"'


@app.websocket("/ws")
async def ws() -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    await websocket.accept()
    subscribers.add(queue)
    try:
        await websocket.send('{"type":"subscribed"}')
        while True:
            await websocket.send(await queue.get())
    finally:
        subscribers.discard(queue)


@app.get("/sse")
async def sse() -> Response:
    async def stream() -> AsyncIterator[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        subscribers.add(queue)
        try:
            yield 'retry: 2000\n\nevent: subscribed\ndata: {"type":"subscribed"}\n\n'
            while True:
                frame = await queue.get()
                # The event id off the frame's front, as the runtime's SSE does.
                event_id = frame[len(EVENT_PREFIX) : frame.index('"', len(EVENT_PREFIX))]
                yield f"id: {event_id}\nevent: event\ndata: {frame}\n\n"
        finally:
            subscribers.discard(queue)

    response = Response(stream(), content_type="text/event-stream; charset=utf-8")
    response.timeout = None
    return response


@app.post("/publish")
async def publish() -> tuple[str, int]:
    frame = (await request.get_data()).decode()
    for queue in subscribers:
        queue.put_nowait(frame)
    return "", 204


async def main() -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = Config()
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    config.accesslog = None
    config.loglevel = "WARNING"

    @app.before_serving
    async def announce() -> None:
        print(f"port={sock.getsockname()[1]}", flush=True)

    await serve(app, config)  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main())
