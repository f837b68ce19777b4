"""`Realtime(app)` in a plain Quart app that is not the runtime's."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest
from hypercorn.utils import LifespanFailureError
from quart import Quart, request

from runtime import BaseModel, Realtime
from runtime.config import RealtimeConfig
from runtime.db import (
    DatabaseUnavailable,
    TrackingPostgresqlDatabase,
    TrackingSqliteDatabase,
    database,
    open_database,
)
from tests.realtime_client import Client
from tests.support import LiveServer


class Board(BaseModel):
    title = peewee.CharField()

    read_rule = "authenticated"
    write_rule = "nobody"

    class Meta:
        table_name = "test_board"


class Visitor:
    """The app's own idea of a user: anything with `id` and `is_admin`."""

    def __init__(self, name: str) -> None:
        self.id, self.is_admin, self.name = name, False, name

    def public_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}


async def identify_by_header() -> tuple[Any, str | None]:
    from quart import websocket

    name = websocket.headers.get("X-User")
    return (Visitor(name), None) if name else (None, None)


@pytest.fixture
def plain_app(tmp_path: Path) -> Iterator[Quart]:
    open_database(str(tmp_path / "plain.sqlite3"))
    database.create_tables([Board])
    app = Quart("plain")
    realtime = Realtime(
        config=RealtimeConfig(heartbeat=5.0), models=[Board], identify=identify_by_header
    )
    realtime.init_app(app)

    @app.post("/boards")
    async def add_board() -> dict[str, Any]:
        board = Board.create(title=(await request.get_json())["title"])
        return {"id": board.id}

    yield app
    database.close()


async def test_events_and_broadcasts_in_a_plain_quart_app(plain_app: Quart) -> None:
    import httpx

    with LiveServer(plain_app) as server:
        async with (
            await Client.connect(server, headers={"X-User": "ann"}) as ann,
            await Client.connect(server) as anonymous,
        ):
            assert ann.connected["user"] == {"id": "ann", "name": "ann"}
            assert ann.connected["heartbeat"] == 5.0
            await ann.ok_subscribe("test_board")
            denied = await anonymous.subscribe("test_board")
            assert denied["type"] == "error" and denied["code"] == "forbidden"
            not_served = await ann.subscribe("messages")  # the runtime's demo: not here
            assert not_served["type"] == "error" and not_served["code"] == "forbidden"
            async with httpx.AsyncClient(base_url=server.url) as http:
                await http.post("/boards", json={"title": "hello"})
            event = await ann.recv_type("event")
            assert event["collection"] == "test_board" and event["record"]["title"] == "hello"
            event_id = plain_app.realtime_broadcast(  # type: ignore[attr-defined]
                "wave", {"from": "server"}, user_ids=["ann"]
            )
            assert (await ann.recv_type("event"))["id"] == event_id
            await anonymous.expect_silence()


def test_serving_does_not_start_on_a_database_never_initialized(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The observed case: no database open, and the browser only saw closes. Now start-up
    fails, with one line that says what to do."""
    app = Quart("unopened")
    Realtime(app, database=peewee.DatabaseProxy())
    server = LiveServer(app)
    try:
        with caplog.at_level(logging.CRITICAL), pytest.raises(LifespanFailureError) as failure:
            server.start()
    finally:
        server.stop()
    assert "realtime: the database given: its DatabaseProxy was never initialized" in str(
        failure.value
    )


async def test_start_up_fails_on_a_database_that_cannot_be_reached() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once it is closed
    app = Quart("unreachable")
    Realtime(app, database=TrackingPostgresqlDatabase(f"postgresql://app@127.0.0.1:{port}/app"))
    with pytest.raises(DatabaseUnavailable, match=r"^realtime: the database given: cannot connect"):
        await app.startup()


def test_served_models_must_be_on_the_database_given() -> None:
    with pytest.raises(ValueError, match="Board is bound to another database"):
        Realtime(Quart("mixed"), models=[Board], database=TrackingSqliteDatabase(":memory:"))
