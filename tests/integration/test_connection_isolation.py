"""One connection's failure stays with that connection, over a real server.

A failure is injected at one step of getting events to one connection (the victim):
its frames' encoding, the write to its socket, putting a frame on its queue, the
rendering of its htmx fragments, the read rule for its user. Bystanders on every
transport (WebSocket, an SSE stream, an htmx stream) must keep getting every event, in
order; the victim is closed with 1011 (internal error), or, where app code about the
data failed (a rule), only misses that event; each failure is counted and logged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from runtime.db import database
from runtime.demo import Message
from runtime.realtime.connections.connection import Connection
from runtime.realtime.transports.sse import HTMLSink, SSESink
from runtime.realtime.transports.websocket import WebSocketSink
from runtime.users import User
from tests.realtime_client import Client, login_cookie
from tests.sse_client import SSEStream, stream
from tests.support import TIMEOUT, LiveServer

# A frame no wire can carry: JSON text holding a lone surrogate. Clients cannot send one
# any more and app code is refused it; here it stands for whatever one connection's
# data might do to its sink.
POISON = '{"type":"event","id":"poison","collection":null,"data":"\ud800"}'


class Peer:
    """A client on one transport, seen from the test: its events and its close."""

    def __init__(
        self, connection_id: str, ws: Client | None = None, sse: SSEStream | None = None
    ) -> None:
        self.connection_id, self.ws, self.sse = connection_id, ws, sse

    async def event_ids(self, count: int) -> list[str]:
        """The ids of the next `count` events (htmx fragments included)."""
        ids = []
        while len(ids) < count:
            if self.ws is not None:
                ids.append((await self.ws.recv_type("event"))["id"])
                continue
            assert self.sse is not None
            message = await self.sse.next()
            assert message.event != "close", message.data
            if message.id is not None:  # an event, as JSON or as a fragment
                ids.append(message.id)
        return ids

    async def close_code(self) -> int:
        """How the server closed it (what it still had to say before is skipped)."""
        if self.ws is not None:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await self.ws.recv()
            assert closed.value.rcvd is not None, repr(closed.value)
            return closed.value.rcvd.code
        assert self.sse is not None
        while (message := await self.sse.next()).event != "close":
            pass
        code: int = message.json["code"]
        with pytest.raises(EOFError):  # and the stream ends
            await self.sse.next()
        return code


@contextlib.asynccontextmanager
async def peer(server: LiveServer, transport: str, user: str | None) -> AsyncIterator[Peer]:
    """A client subscribed to messages."""
    if transport == "websocket":
        async with await Client.connect(server, user=user) as ws:
            await ws.ok_subscribe("messages")
            yield Peer(ws.connected["connection_id"], ws=ws)
        return
    cookie = await login_cookie(server, user) if user else None
    query = "?pattern=messages" + ("&format=html" if transport == "html" else "")
    async with stream(server, query, cookie=cookie) as sse:
        connected = await sse.frame()
        assert (await sse.frame())["type"] == "subscribed"
        yield Peer(connected["connection_id"], sse=sse)


def connection_of(server: LiveServer, connection_id: str) -> Connection:
    conn = server.call(server.broker.connections.get, connection_id)
    assert conn is not None and conn.sink is not None
    return conn  # type: ignore[no-any-return]


def fail_for(target: Callable[[Any], bool], original: Callable[..., Any]) -> Callable[..., Any]:
    """`original`, raising for the object `target` picks out (when given frames)."""

    def injected(self: Any, *args: Any, **kwargs: Any) -> Any:
        if target(self) and (not args or args[0]):
            raise RuntimeError("injected failure")
        return original(self, *args, **kwargs)

    return injected


def inject(step: str, victim: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `step` fail for `victim` only (for "encode", it is given a frame that
    cannot be encoded, in the same turn of the event loop as an event for everyone)."""
    if step == "write":  # its socket: the flusher's writes and the transport task's
        for sink in (WebSocketSink, SSESink):
            for name in ("write", "send"):
                original = getattr(sink, name)
                patched = fail_for(lambda s: s is victim.sink, original)
                monkeypatch.setattr(sink, name, patched)
    elif step == "queue":  # fan-out putting a frame on its queue
        patched = fail_for(lambda c: c is victim, Connection.send)
        monkeypatch.setattr(Connection, "send", patched)
    elif step == "render":  # its htmx fragments, on either path
        for name in ("_messages", "_text"):
            original = getattr(HTMLSink, name)
            monkeypatch.setattr(HTMLSink, name, fail_for(lambda s: s is victim.sink, original))
    elif step == "rule":  # app code about the data: the read rule, for its user only
        original = Message.readable_by

        def readable_by(record: Message, user: Any) -> bool:
            if user is not None and user.id == victim.user_id:
                raise RuntimeError("injected rule failure")
            return bool(original(record, user))

        monkeypatch.setattr(Message, "readable_by", readable_by)


# (step, the victim's transport, the stage its failure is counted under)
CASES = [
    ("encode", "websocket", "write"),
    ("encode", "sse", "write"),
    ("encode", "html", "write"),
    ("write", "websocket", "write"),
    ("write", "sse", "write"),
    ("queue", "websocket", "queue"),
    ("queue", "sse", "queue"),
    ("render", "html", "write"),
    ("rule", "websocket", None),
]


@pytest.mark.parametrize(("step", "transport", "stage"), CASES)
async def test_a_failure_for_one_connection_costs_no_other_an_event(
    server: LiveServer,
    users: dict[str, User],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    step: str,
    transport: str,
    stage: str | None,
) -> None:
    app: Any = server.app
    alice = users["alice"]
    caplog.set_level(logging.ERROR, logger="runtime.realtime")
    # The victim first: first in fan-out's order and first in the flusher's, so that a
    # failure that stopped either would stop them for everyone after it.
    async with (
        peer(server, transport, "alice") as victim,
        peer(server, "websocket", "bob") as ws,
        peer(server, "sse", None) as sse,
        peer(server, "html", None) as html,
    ):
        conn = connection_of(server, victim.connection_id)
        inject(step, conn, monkeypatch)

        def in_one_turn() -> str:
            if step == "encode":
                conn.send(POISON)
            return str(app.realtime_broadcast("everyone", {"n": 1}))  # fan-out to all

        everyone = server.call(in_one_turn)
        with database.atomic():  # three record events, written together
            for i in range(3):
                Message.create(text=f"m{i}", author=alice)
        assert ws.ws is not None
        events = [await ws.ws.recv_type("event") for _ in range(4)]
        assert events[0]["id"] == everyone
        assert [e["record"]["text"] for e in events[1:]] == ["m0", "m1", "m2"]
        ids = [e["id"] for e in events]
        for bystander in (sse, html):  # the same events, in the same order
            assert await bystander.event_ids(4) == ids
        if stage is None:  # a rule: the reader misses the events it failed on, no more
            assert await victim.event_ids(1) == [everyone]
            monkeypatch.undo()
        else:
            assert await victim.close_code() == 1011
        # Every bystander keeps getting every event.
        Message.create(text="later", author=alice)
        later = await ws.event_ids(1)
        assert later[0] not in ids
        for other in (sse, html) if stage else (sse, html, victim):
            assert await other.event_ids(1) == later
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        metrics = (await http.get("/realtime/metrics")).text
    if stage is None:
        assert 'delivery_errors_total{collection="messages",stage="read rule"} 3' in metrics
    else:
        assert f'runtime_realtime_connection_errors_total{{stage="{stage}"}} 1' in metrics
        logged = [r.getMessage() for r in caplog.records if "1011" in r.getMessage()]
        assert len(logged) == 1 and conn.id in logged[0], logged
