"""A read rule on a hidden field, over a real server: declared in `rule_reads_hidden`,
events carry the field inside the server (never to a client) and live views follow it
as the records API does; undeclared, the rule cannot read it from an event and the
event reaches no one that rule would judge (never judged on a None the row lacks)."""

from __future__ import annotations

import logging
from typing import Any

import peewee
import pytest

from runtime import BaseModel
from runtime.users import User
from tests.realtime_client import Client, api_session
from tests.support import LiveServer


def not_archived(user: Any, record: Any) -> bool:
    return not record.archived or (user is not None and user.is_admin)


class Doc(BaseModel):
    title = peewee.CharField()
    archived = peewee.BooleanField(default=False)

    read_rule = not_archived
    write_rule = "admin"
    hidden = ("archived",)
    rule_reads_hidden = ("archived",)

    class Meta:
        table_name = "test_live_views_docs"


class UndeclaredDoc(BaseModel):
    title = peewee.CharField()
    archived = peewee.BooleanField(default=False)

    read_rule = not_archived
    write_rule = "admin"
    hidden = ("archived",)  # and the rule reads it, undeclared

    class Meta:
        table_name = "test_live_views_undeclared_docs"


def _archive(doc: BaseModel, archived: bool) -> None:
    doc.archived = archived  # type: ignore[attr-defined]
    doc.save()


async def test_a_rule_on_a_declared_hidden_field_keeps_views_true(
    server: LiveServer, users: dict[str, User]
) -> None:
    async with (
        await Client.connect(server, user="bob") as bob,
        await Client.connect(server, user="root") as root,
    ):
        for client in (bob, root):
            await client.ok_subscribe("test_live_views_docs")
        archived = Doc.create(title="old", archived=True)
        assert (await root.recv_type("event"))["record"] == {"id": archived.id, "title": "old"}
        live = Doc.create(title="live")
        for client in (bob, root):  # bob never heard of the archived one
            assert (await client.recv_type("event"))["record"] == {"id": live.id, "title": "live"}

        _archive(live, True)  # only the hidden field: bob loses it, root hears nothing
        left = await bob.recv_type("event")
        assert (left["action"], left["reason"], left["record"]) == (
            "delete",
            "access",
            {"id": live.id, "title": "live"},
        )
        _archive(archived, False)  # and gains the other
        entered = await bob.recv_type("event")
        assert (entered["action"], entered["reason"], entered["record"]) == (
            "create",
            "access",
            {"id": archived.id, "title": "old"},
        )
        await bob.expect_silence()
        await root.expect_silence()
    async with api_session(server, "bob") as http:
        listed = await http.get("/api/collections/test_live_views_docs/records")
    # What the API lists for bob is what his live view now holds, without the field.
    assert listed.json()["items"] == [{"id": archived.id, "title": "old"}]


async def test_an_undeclared_hidden_field_fails_closed_and_says_why(
    server: LiveServer, users: dict[str, User], caplog: pytest.LogCaptureFixture
) -> None:
    faults = server.app.extensions["realtime"].broker.faults
    with caplog.at_level(logging.ERROR, logger="runtime.realtime"):
        async with await Client.connect(server, user="bob") as bob:
            await bob.ok_subscribe("test_live_views_undeclared_docs")
            UndeclaredDoc.create(title="archived", archived=True)
            await bob.expect_silence()  # never judged on an archived = None
        assert faults.counts[("test_live_views_undeclared_docs", "read rule")] >= 1
    assert "add it to UndeclaredDoc.rule_reads_hidden" in caplog.text


def test_rule_reads_hidden_must_name_hidden_fields() -> None:
    with pytest.raises(TypeError, match=r"rule_reads_hidden names fields not hidden: \['title'\]"):

        class Wrong(BaseModel):
            title = peewee.CharField()
            rule_reads_hidden = ("title",)

            class Meta:
                table_name = "test_live_views_wrong_docs"
