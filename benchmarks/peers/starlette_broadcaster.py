"""Peer: Starlette with encode/broadcaster's memory backend, served by uvicorn.

Uvicorn runs on the standard asyncio loop with h11 and the websockets library, like
the runtime's server on its loop: the comparison is of frameworks, not event loops."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from broadcaster import Broadcast
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

broadcast = Broadcast("memory://")
CHANNEL = "messages"


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    async with broadcast.subscribe(channel=CHANNEL) as subscriber:
        await websocket.send_text('{"type":"subscribed"}')
        async for event in subscriber:  # type: ignore[union-attr]
            await websocket.send_text(event.message)


async def publish(request: Request) -> Response:
    await broadcast.publish(channel=CHANNEL, message=(await request.body()).decode())
    return Response(status_code=204)


def main() -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await broadcast.connect()
        print(f"port={sock.getsockname()[1]}", flush=True)
        yield
        await broadcast.disconnect()

    app = Starlette(
        routes=[WebSocketRoute("/ws", ws), Route("/publish", publish, methods=["POST"])],
        lifespan=lifespan,
    )
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        ws="websockets",
        ws_per_message_deflate=False,
        lifespan="on",
        log_level="warning",
        access_log=False,
        backlog=1024,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
