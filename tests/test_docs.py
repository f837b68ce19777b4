"""The examples in docs/ run: configuration blocks load, Python blocks execute."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart

from runtime import base_model, create_app, registry
from runtime.config import Config, load_config
from runtime.db import database
from runtime.demo.models import Message
from runtime.users import User
from tests.conftest import PASSWORD, PASSWORD_HASH
from tests.docs_apps import blocks
from tests.realtime_client import Client
from tests.support import TIMEOUT, LiveServer, assert_error


def test_the_production_configuration_in_security_md_loads(tmp_path: Path) -> None:
    (block,) = blocks("docs/security.md", "toml", section="Production behind a proxy")
    path = tmp_path / "config.toml"
    path.write_text(block)
    config = load_config(path, environ={"RUNTIME_APP_SECRET_KEY": "a-production-secret-key"})
    assert config.app.env == "production" and config.auth.cookie_secure
    assert config.app.trusted_proxies == ("127.0.0.1",)


@pytest.fixture
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples are apps of your own, which never have the demo's collections (one
    of them is named like the demo's notes): they see the registry without the demo's,
    and what they define stays out of the registry the other tests see."""
    own = {
        name: model
        for name, model in base_model.collections().items()
        if not model.__module__.startswith("runtime.demo")
    }
    monkeypatch.setattr(registry, "_registry", own)


def run_python_blocks(document: str, python_blocks: list[str]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"docs_{Path(document).stem}_md"}
    for block in python_blocks:
        exec(compile(block, document, "exec"), namespace)
    return namespace


def test_the_rules_per_action_example_in_models_md(
    config: Config, own_registry: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where the examples' SQLite files would go
    # "Changing your models" is an app run with its own commands (test_schema_commands).
    changing = blocks("docs/models.md", "python", section="Changing your models")
    python_blocks = [b for b in blocks("docs/models.md", "python") if b not in changing]
    post = run_python_blocks("docs/models.md", python_blocks)["Post"]
    app = create_app(config, models=[post])
    try:
        for name in ("alice", "bob", "root"):
            User.create(username=name, password_hash=PASSWORD_HASH, is_admin=name == "root")
        with LiveServer(app) as server:
            clients = {name: log_in(server, name) for name in ("alice", "bob", "root")}
            alice, bob, root = clients["alice"], clients["bob"], clients["root"]
            records = "/api/collections/posts/records"
            first = alice.post(records, json={"text": "mine"}).json()
            second = bob.post(records, json={"text": "bob's"}).json()
            assert_error(
                bob.patch(f"{records}/{first['id']}", json={"text": "x"}), 403, "forbidden"
            )
            assert_error(bob.delete(f"{records}/{first['id']}"), 403, "forbidden")
            assert alice.patch(f"{records}/{first['id']}", json={"text": "edited"}).is_success
            assert root.delete(f"{records}/{second['id']}").status_code == 204  # the function
            assert alice.delete(f"{records}/{first['id']}").status_code == 204
            for c in clients.values():
                c.close()
    finally:
        database.close()


def log_in(server: LiveServer, username: str) -> httpx.Client:
    c = httpx.Client(base_url=server.url, timeout=TIMEOUT)
    assert c.post("/auth/login", json={"username": username, "password": PASSWORD}).is_success
    return c


async def test_the_realtime_in_any_quart_app_example_in_events_md(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_registry: None
) -> None:
    monkeypatch.chdir(tmp_path)  # where the example's SQLite file goes
    (block,) = blocks("docs/events.md", "python", section="Realtime in any Quart app")
    example: dict[str, Any] = {"__name__": "docs_events_md"}
    exec(compile(block, "docs/events.md", "exec"), example)
    app, db = example["app"], example["db"]
    try:
        with LiveServer(app) as server:
            origin = {"Origin": "https://example.com"}
            async with await Client.connect(server, headers=origin) as client:
                reply = await client.ok_subscribe("posts", snapshot=True)
                assert reply["snapshot"]["records"] == []
                async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
                    created = (await http.post("/posts", json={"title": "hello"})).json()
                event = await client.recv_type("event")
                assert event["topic"] == f"posts/{created['id']}"
                assert event["record"] == {"id": created["id"], "title": "hello"}
                # Only the collections of that database are served.
                refused = await client.subscribe("messages")
                assert refused["type"] == "error" and refused["code"] == "forbidden"
    finally:
        db.close()


async def test_the_record_and_custom_event_examples_in_events_md(
    app: Quart, server: LiveServer, users: dict[str, User]
) -> None:
    (record_events,) = blocks("docs/events.md", "python", section="Record events")
    (custom_events,) = blocks("docs/events.md", "python", section="Custom events")
    alice = users["alice"]
    async with (
        await Client.connect(server, user="alice") as first,
        await Client.connect(server, user="alice") as second,
        await Client.connect(server, user="bob") as other,
    ):
        await first.ok_subscribe("messages")
        await other.ok_subscribe("messages")
        namespace = {
            "Message": Message,
            "user": alice,
            "app": app,
            "data": {"text": "for the first tab"},
            "connection_id": first.connected["connection_id"],
        }
        # As the docs say it may be: sync code on a thread that is not the server's loop.
        await asyncio.to_thread(exec, compile(record_events, "docs/events.md", "exec"), namespace)
        created, updated, deleted = await first.events(3)
        assert [e["action"] for e in (created, updated, deleted)] == ["create", "update", "delete"]
        assert created["record"]["text"] == "hi" and created["record"]["author"] == alice.id
        assert updated["changed"] == ["text"] and updated["record"]["text"] == "edited"
        assert deleted["record"]["text"] == "edited"
        assert [e["action"] for e in await other.events(3)] == ["create", "update", "delete"]

        await asyncio.to_thread(exec, compile(custom_events, "docs/events.md", "exec"), namespace)
        typing = await first.recv_type("event")
        assert typing["id"] == namespace["event_id"]
        assert (typing["name"], typing["collection"], typing["data"]) == (
            "typing",
            "messages",
            {"who": "alice"},
        )
        names = ["maintenance", "ping", "reply"]  # every connection, alice's, the first tab
        assert [(e["name"], e["data"]) for e in await first.events(3)] == [
            ("maintenance", {"in": 300}),
            ("ping", {}),
            ("reply", {"text": "for the first tab"}),
        ]
        assert [e["name"] for e in await second.events(2)] == names[:2]
        assert [e["name"] for e in await other.events(2)] == ["typing", "maintenance"]
        for client in (first, second, other):
            await client.expect_silence()


async def test_the_related_fields_example_in_models_md(
    config: Config, own_registry: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    python_blocks = blocks("docs/models.md", "python", section="Related fields")
    comment = run_python_blocks("docs/models.md", python_blocks)["Comment"]
    app = create_app(config, models=[comment])
    try:
        alice = User.create(username="alice", password_hash=PASSWORD_HASH)
        with LiveServer(app) as server:
            async with await Client.connect(server) as visitor:
                await visitor.ok_subscribe("comments", expand=["author"])
                async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
                    login = {"username": "alice", "password": PASSWORD}
                    assert (await http.post("/auth/login", json=login)).is_success
                    records = "/api/collections/comments/records"
                    created = (await http.post(records, json={"text": "hi"})).json()
                    assert created["author"] == alice.id
                    event = await visitor.recv_type("event")
                    public = {"id": alice.id, "username": "alice", "is_admin": False}
                    assert event["record"] == {**created, "expand": {"author": public}}
                    User.update(username="alicia").where(User.id == alice.id).execute()
                    listed = (await http.get(records, params={"expand": "author"})).json()
                    (item,) = listed["items"]
                    assert item["expand"]["author"]["username"] == "alicia"  # read anew
                refused = await visitor.subscribe("users")  # users stay unreadable
                assert refused["type"] == "error" and refused["code"] == "forbidden"
    finally:
        database.close()


def test_the_validation_example_in_models_md(
    config: Config, own_registry: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """models.md's Signup, and the answers api.md shows for it."""
    monkeypatch.chdir(tmp_path)
    section = "Validation and constraint messages"
    signup = run_python_blocks(
        "docs/models.md", blocks("docs/models.md", "python", section=section)
    )["Signup"]
    app = create_app(config, models=[signup])
    try:
        User.create(username="alice", password_hash=PASSWORD_HASH)
        from runtime import ValidationError

        with pytest.raises(ValidationError) as refused:  # a script: validated too
            signup.create(email="x", team="t", nick="n")
        assert refused.value.fields == {"email": "Not an email address."}
        with LiveServer(app) as server, contextlib.closing(log_in(server, "alice")) as alice:
            records = "/api/collections/signups/records"
            first = {"email": "a@x", "team": "t", "nick": "n"}
            assert alice.post(records, json=first).status_code == 201

            def error(body: dict[str, Any], status: int, code: str) -> dict[str, Any]:
                found: dict[str, Any] = assert_error(alice.post(records, json=body), status, code)
                return found

            assert error({**first, "email": "x"}, 400, "bad_request") == {
                "code": "bad_request",
                "message": "Invalid fields: 'email'.",
                "reason": "invalid",
                "fields": {"email": "Not an email address."},
            }
            duplicate = error({**first, "nick": "m"}, 409, "conflict")
            assert (duplicate["message"], duplicate["field"]) == ("That email is taken.", "email")
            pair = error({**first, "email": "b@x"}, 409, "conflict")
            assert pair == {
                "code": "conflict",
                "message": "That nick is taken in this team.",
                "reason": "unique",
                "fields": ["team", "nick"],
            }
            young = error({"email": "c@x", "team": "t", "nick": "y", "age": 9}, 400, "bad_request")
            assert (young["message"], young["reason"], young["field"]) == (
                "You must be 13 or older.",
                "check",
                "age",
            )
    finally:
        database.close()


def test_a_message_for_nothing_the_model_has_is_refused(own_registry: None) -> None:
    import peewee

    from runtime import BaseModel

    with pytest.raises(TypeError, match=r"Typo\.messages\['unique'\] names an unknown field"):

        class Typo(BaseModel):
            email = peewee.CharField(unique=True)
            messages = {"unique": {"emial": "Taken."}}

            class Meta:
                table_name = "test_typo"

    with pytest.raises(TypeError, match=r"Typo\.messages: 'uniq' is not one of"):

        class Typo(BaseModel):  # type: ignore[no-redef]
            email = peewee.CharField(unique=True)
            messages = {"uniq": {"email": "Taken."}}

            class Meta:
                table_name = "test_typo"
