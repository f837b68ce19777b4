"""A real WebSocket client for the tests, with every wait bounded by TIMEOUT."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import PASSWORD
from tests.support import TIMEOUT, ServerProcess, ThreadedServer

__all__ = ["Client", "api_session", "login_cookie"]

_ids = itertools.count(1)


@contextlib.asynccontextmanager
async def api_session(server: ThreadedServer, username: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client logged in as `username`."""
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        response = await http.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        yield http


async def login_cookie(server: ThreadedServer, username: str) -> str:
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        response = await http.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return "; ".join(f"{k}={v}" for k, v in http.cookies.items())


class Client:
    """One WebSocket connection to /realtime/subscribe that speaks the protocol."""

    def __init__(self, ws: ClientConnection, server: ThreadedServer | ServerProcess) -> None:
        self.ws = ws
        self.server = server
        self.connected: dict[str, Any] = {}
        self.pending: list[dict[str, Any]] = []

    @classmethod
    async def connect(
        cls,
        server: ThreadedServer | ServerProcess,
        *,
        user: str | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> Client:
        extra = dict(headers or {})
        if user is not None:
            extra["Cookie"] = await login_cookie(server, user)
        ws = await websockets.connect(
            f"{server.ws_url}/realtime/subscribe{query}",
            additional_headers=extra,
            open_timeout=TIMEOUT,
            **options,
        )
        client = cls(ws, server)
        client.connected = await client.recv()
        assert client.connected["type"] == "connected", client.connected
        return client

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self) -> dict[str, Any]:
        """The next frame (arrays from ?batch=1 are unpacked in order); pings answered."""
        while True:
            if self.pending:
                frame = self.pending.pop(0)
            else:
                raw = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
                data = json.loads(raw)
                if isinstance(data, list):
                    self.pending.extend(data[1:])
                    data = data[0]
                frame = data
            if frame.get("type") == "ping":
                await self.send({"type": "pong"})
                continue
            return frame

    async def recv_type(self, kind: str) -> dict[str, Any]:
        frame = await self.recv()
        assert frame["type"] == kind, frame
        return frame

    async def events(self, count: int) -> list[dict[str, Any]]:
        return [await self.recv_type("event") for _ in range(count)]

    async def subscribe(self, pattern: str, **fields: Any) -> dict[str, Any]:
        request_id = f"r{next(_ids)}"
        await self.send({"type": "subscribe", "id": request_id, "pattern": pattern, **fields})
        reply = await self.recv()
        assert reply.get("id") == request_id, reply
        return reply

    async def ok_subscribe(self, pattern: str, **fields: Any) -> dict[str, Any]:
        reply = await self.subscribe(pattern, **fields)
        assert reply["type"] == "subscribed", reply
        return reply

    async def expect_silence(self) -> None:
        """Nothing is queued for us: the answer to a ping is the very next frame.

        Once everything committed so far is published (events are published by a task
        of the server's loop), events for us are queued before the pong of a ping sent
        now, so this proves that none of them was for this client.
        """
        assert isinstance(self.server, ThreadedServer), "needs a server in this process"
        await self.server.run(self.server.broker.flushed())
        await self.send({"type": "ping"})
        frame = await self.recv()
        assert frame["type"] == "pong", f"unexpected frame: {frame}"
