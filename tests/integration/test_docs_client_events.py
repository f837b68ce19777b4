"""The client events, channels and presence example of docs/events.md, run as written
and served: a logged-in client rolls, everyone in the lobby hears it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from runtime import base_model
from runtime.db import database
from runtime.users import User
from tests.conftest import PASSWORD_HASH
from tests.docs_apps import blocks
from tests.realtime_client import Client
from tests.support import LiveServer


async def test_the_client_events_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (block,) = blocks("docs/events.md", "python", section="Client events, channels and presence")
    monkeypatch.chdir(tmp_path)  # create_app() makes var/ here, with its defaults
    for name in list(os.environ):
        if name.startswith("RUNTIME_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(base_model, "_registry", base_model.collections())
    namespace: dict[str, Any] = {"__name__": "docs_events_md"}
    exec(compile(block, "docs/events.md", "exec"), namespace)
    app = namespace["app"]
    User.create(username="alice", password_hash=PASSWORD_HASH)
    try:
        with LiveServer(app) as server:
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
    finally:
        database.close()
