"""The client events, channels and presence example of docs/events.md, run as written
and served: a logged-in client rolls, everyone in the lobby hears it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs_apps import client_events_server
from tests.realtime_client import Client


async def test_the_client_events_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with client_events_server(tmp_path, monkeypatch) as server:
        async with (
            await Client.connect(server, user="alice") as alice,
            await Client.connect(server) as visitor,
        ):
            reply = await alice.ok_subscribe("lobby")
            assert reply["presence"] == []
            assert (await alice.recv_type("event"))["action"] == "join"
            await alice.send({"type": "emit", "id": "r", "name": "roll", "data": {"sides": 6}})
            frames = [await alice.recv(), await alice.recv()]
            assert {"type": "ack", "id": "r", "data": {"sides": 6}} in frames
            rolled = next(f for f in frames if f["type"] == "event")
            assert rolled["name"] == "rolled" and rolled["data"] == {"by": "alice", "sides": 6}
            await visitor.send({"type": "emit", "id": "v", "name": "roll", "data": {}})
            refused = await visitor.recv_type("error")
            assert (refused["id"], refused["code"]) == ("v", "forbidden")
            cards = await alice.ok_subscribe("cards")  # presence on a collection
            assert cards["presence"] == []  # her own arrival comes next, as an event
            join = await alice.recv_type("event")
            assert (join["action"], join["topic"], join["user"]["username"]) == (
                "join",
                "cards",
                "alice",
            )
