"""What the database refuses, and what a model's `validate()` refuses, over a real server on
SQLite and PostgreSQL: the records API (POST and PATCH) and client events (WebSocket and
SSE POST) answer with the same `reason` and fields, never a 500, never a hidden field."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import peewee
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart import Quart

from runtime import BaseModel, Realtime, ValidationError, create_app
from runtime.config import Config
from runtime.db import database
from runtime.realtime import Sender
from runtime.users import User
from tests.conftest import PASSWORD
from tests.databases import both_databases
from tests.realtime_client import Client, login_cookie
from tests.sse_client import SSEStream
from tests.support import TIMEOUT, LiveServer, assert_error


class Account(BaseModel):
    email = peewee.CharField(unique=True)
    room = peewee.CharField(default="lobby")
    nick = peewee.CharField(default="guest")
    age = peewee.IntegerField(null=True, constraints=[peewee.Check("age >= 0")])
    read_rule = "public"
    write_rule = "authenticated"

    class Meta:
        table_name = "test_accounts"
        indexes = ((("room", "nick"), True),)


class Handle(BaseModel):
    """Its own words for what the database refuses."""

    name = peewee.CharField(unique=True)
    low = peewee.IntegerField(default=0)
    high = peewee.IntegerField(default=0)
    score = peewee.IntegerField(default=0, constraints=[peewee.Check("score <= 100")])
    read_rule = "public"
    write_rule = "authenticated"
    messages = {
        "unique": {"name": "That name is taken."},
        "check": {"score": "At most 100.", "low_not_above_high": "low must not exceed high."},
    }

    class Meta:
        table_name = "test_handles"
        constraints = [peewee.Check("low <= high", name="low_not_above_high")]


class Stamped(BaseModel):
    """A required field the client may not set: the database refuses, naming it."""

    label = peewee.CharField(null=True)
    stamp = peewee.CharField()
    read_only = ("stamp",)
    read_rule = "public"
    write_rule = "authenticated"

    class Meta:
        table_name = "test_stamped"


class Vault(BaseModel):
    """Hidden fields the database refuses are never named."""

    label = peewee.CharField(null=True)
    token = peewee.CharField(unique=True, default="the same for all")
    hidden = ("token",)
    read_rule = "public"
    write_rule = "authenticated"

    class Meta:
        table_name = "test_vaults"


class Locker(BaseModel):
    label = peewee.CharField(null=True)
    secret = peewee.CharField()  # hidden and required: the app was to set it
    hidden = ("secret",)
    read_rule = "public"
    write_rule = "authenticated"

    class Meta:
        table_name = "test_lockers"


class Titled(BaseModel):
    title = peewee.CharField(null=True)
    read_rule = "public"
    write_rule = "authenticated"

    class Meta:
        table_name = "test_titled"

    def validate(self, user: Any) -> None:
        if not (self.title or "").strip():
            raise ValidationError({"title": "Must not be empty."})
        if self.title == "whoami":  # shows which user validate() was given
            raise ValidationError({"title": f"as {user.username if user else None}"})


realtime = Realtime()


# Sync: in a worker thread, which must not keep the connection it opened (on PostgreSQL
# the suite's teardown counts connections left open).
@realtime.on("account.create")
def create_account(data: Any, sender: Sender) -> Any:
    return Account.create(**data).visible_to(sender.user)


@realtime.on("titled.create")  # async: on the loop, as the records API writes
async def create_titled(data: Any, sender: Sender) -> Any:
    return Titled.create(**data).visible_to(sender.user)


@pytest.fixture
def app(config: Config) -> Iterator[Quart]:
    # Hypothesis writes as fast as the server answers, as one user: never refused.
    app = create_app(config.replace(api={"rate_limit": "1000000/second"}), realtime=realtime)
    yield app
    database.close()


@pytest.fixture
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert c.post("/auth/login", json={"username": "alice", "password": PASSWORD}).is_success
        yield c


def url(table: str, record_id: object = None) -> str:
    base = f"/api/collections/{table}/records"
    return base if record_id is None else f"{base}/{record_id}"


def created(response: httpx.Response) -> Any:
    assert response.status_code == 201, response.text
    return response.json()["id"]


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    error: dict[str, Any] = assert_error(response, status, code)
    return error


@both_databases
def test_a_unique_field_is_named(alice: httpx.Client) -> None:
    first = created(alice.post(url("test_accounts"), json={"email": "a@x", "nick": "a"}))
    response = alice.post(url("test_accounts"), json={"email": "a@x", "nick": "b"})
    assert response.json() == {
        "error": {
            "code": "conflict",
            "message": "A record with that value of 'email' already exists.",
            "reason": "unique",
            "field": "email",
        }
    }
    assert response.status_code == 409
    other = created(alice.post(url("test_accounts"), json={"email": "b@x", "nick": "b"}))
    error = refused(
        alice.patch(url("test_accounts", other), json={"email": "a@x"}), 409, "conflict"
    )
    assert (error["reason"], error["field"]) == ("unique", "email")
    assert alice.get(url("test_accounts", first)).json()["email"] == "a@x"
    assert alice.get(url("test_accounts")).json()["total_items"] == 2


@both_databases
def test_a_multi_column_unique_index_names_its_fields(alice: httpx.Client) -> None:
    created(alice.post(url("test_accounts"), json={"email": "a@x", "room": "r", "nick": "n"}))
    created(alice.post(url("test_accounts"), json={"email": "b@x", "room": "s", "nick": "n"}))
    response = alice.post(url("test_accounts"), json={"email": "c@x", "room": "r", "nick": "n"})
    error = refused(response, 409, "conflict")
    assert error == {
        "code": "conflict",
        "message": "A record with those values of 'room', 'nick' already exists.",
        "reason": "unique",
        "fields": ["room", "nick"],
    }


@both_databases
def test_a_check_names_its_field(alice: httpx.Client) -> None:
    response = alice.post(url("test_accounts"), json={"email": "a@x", "age": -1})
    assert refused(response, 400, "bad_request") == {
        "code": "bad_request",
        "message": "Field 'age' has a value it may not have.",
        "reason": "check",
        "field": "age",
    }
    record = created(alice.post(url("test_accounts"), json={"email": "a@x", "age": 1}))
    error = refused(alice.patch(url("test_accounts", record), json={"age": -5}), 400, "bad_request")
    assert (error["reason"], error["field"]) == ("check", "age")
    assert alice.get(url("test_accounts", record)).json()["age"] == 1


@both_databases
def test_a_required_field_the_client_cannot_set_is_named(alice: httpx.Client) -> None:
    error = refused(alice.post(url("test_stamped"), json={"label": "x"}), 400, "bad_request")
    assert (error["reason"], error["field"]) == ("not_null", "stamp")
    error = refused(alice.post(url("test_accounts"), json={"email": None}), 400, "bad_request")
    assert (error["reason"], error["field"]) == ("not_null", "email")
    error = refused(alice.post(url("test_accounts"), json={}), 400, "bad_request")
    assert (error["reason"], error["field"]) == ("not_null", "email")


@both_databases
def test_a_model_words_its_own_messages(alice: httpx.Client) -> None:
    created(alice.post(url("test_handles"), json={"name": "ann"}))
    error = refused(alice.post(url("test_handles"), json={"name": "ann"}), 409, "conflict")
    assert error == {
        "code": "conflict",
        "message": "That name is taken.",
        "reason": "unique",
        "field": "name",
    }
    error = refused(
        alice.post(url("test_handles"), json={"name": "b", "score": 101}), 400, "bad_request"
    )
    assert (error["message"], error["reason"], error["field"]) == ("At most 100.", "check", "score")
    body = {"name": "c", "low": 5, "high": 1}  # a check of the table's, by its name
    error = refused(alice.post(url("test_handles"), json=body), 400, "bad_request")
    assert error == {
        "code": "bad_request",
        "message": "low must not exceed high.",
        "reason": "check",
    }


@both_databases
def test_hidden_fields_are_never_named(alice: httpx.Client) -> None:
    created(alice.post(url("test_vaults"), json={"label": "one"}))
    response = alice.post(url("test_vaults"), json={"label": "two"})
    error = refused(response, 409, "conflict")
    assert error == {
        "code": "conflict",
        "message": "A record with that value already exists.",
        "reason": "unique",
    }
    response = alice.post(url("test_lockers"), json={"label": "x"})
    error = refused(response, 400, "bad_request")
    assert error == {
        "code": "bad_request",
        "message": "A required field is missing.",
        "reason": "not_null",
    }
    assert "token" not in response.text and "secret" not in response.text


@both_databases
def test_validate_refuses_posts_and_patches(alice: httpx.Client) -> None:
    response = alice.post(url("test_titled"), json={"title": "  "})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "bad_request",
            "message": "Invalid fields: 'title'.",
            "reason": "invalid",
            "fields": {"title": "Must not be empty."},
        }
    }
    error = refused(alice.post(url("test_titled"), json={"title": "whoami"}), 400, "bad_request")
    assert error["fields"] == {"title": "as alice"}  # the request's user
    record = created(alice.post(url("test_titled"), json={"title": "fine"}))
    error = refused(alice.patch(url("test_titled", record), json={"title": ""}), 400, "bad_request")
    assert (error["reason"], error["fields"]) == ("invalid", {"title": "Must not be empty."})
    assert alice.get(url("test_titled", record)).json()["title"] == "fine"
    assert alice.get(url("test_titled")).json()["total_items"] == 1


def test_validate_is_called_by_save_outside_any_request(app: Quart) -> None:
    """A script's writes are validated too, for no user."""
    with pytest.raises(ValidationError) as refused_here:
        Titled.create(title="")
    assert refused_here.value.fields == {"title": "Must not be empty."}
    with pytest.raises(ValidationError) as refused_here:
        Titled.create(title="whoami")
    assert refused_here.value.fields == {"title": "as None"}
    assert Titled.select().count() == 0


async def emit(client: Client, name: str, data: Any, request_id: str) -> dict[str, Any]:
    await client.send({"type": "emit", "id": request_id, "name": name, "data": data})
    frame: dict[str, Any] = await client.recv()
    assert frame.get("id") == request_id, frame
    return frame


@both_databases
async def test_client_events_answer_refused_writes_over_websocket(
    server: LiveServer, users: dict[str, User]
) -> None:
    async with await Client.connect(server, user="alice") as client:
        frame = await emit(client, "titled.create", {"title": ""}, "t1")
        assert frame == {
            "type": "error",
            "id": "t1",
            "code": "bad_request",
            "message": "Invalid fields: 'title'.",
            "reason": "invalid",
            "fields": {"title": "Must not be empty."},
        }
        frame = await emit(client, "titled.create", {"title": "whoami"}, "t2")
        assert frame["fields"] == {"title": "as alice"}  # the sender
        assert (await emit(client, "account.create", {"email": "a@x"}, "a1"))["type"] == "ack"
        frame = await emit(client, "account.create", {"email": "a@x", "nick": "b"}, "a2")
        assert frame == {
            "type": "error",
            "id": "a2",
            "code": "bad_request",  # the protocol has no `conflict`: the reason says it
            "message": "A record with that value of 'email' already exists.",
            "reason": "unique",
            "field": "email",
        }
        frame = await emit(client, "account.create", {"email": "c@x", "age": -1}, "a3")
        assert (frame["code"], frame["reason"], frame["field"]) == ("bad_request", "check", "age")
        # The handler's connection to the database is usable after the refusals.
        assert (await emit(client, "titled.create", {"title": "ok"}, "t3"))["type"] == "ack"


@contextlib.asynccontextmanager
async def sse(server: LiveServer, cookie: str) -> AsyncIterator[SSEStream]:
    headers = {"Accept": "text/event-stream", "Cookie": cookie}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
        http.stream("GET", "/realtime/subscribe", headers=headers) as response,
    ):
        stream = SSEStream(response)
        await stream.next()  # retry
        yield stream


@both_databases
async def test_client_events_answer_refused_writes_over_sse(
    server: LiveServer, users: dict[str, User]
) -> None:
    cookie = await login_cookie(server, "bob")
    async with (
        sse(server, cookie) as stream,
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        connection_id = (await stream.frame())["connection_id"]
        emits = [
            {"id": "t1", "name": "titled.create", "data": {"title": "whoami"}},
            {"id": "a1", "name": "account.create", "data": {"email": "a@x"}},
            {"id": "a2", "name": "account.create", "data": {"email": "a@x", "nick": "z"}},
        ]
        reply = await http.post(
            "/realtime/subscribe",
            json={"connection_id": connection_id, "emit": emits},
            headers={"Cookie": cookie},
        )
        results = reply.json()["results"]
        assert results[0] == {
            "type": "error",
            "id": "t1",
            "code": "bad_request",
            "message": "Invalid fields: 'title'.",
            "reason": "invalid",
            "fields": {"title": "as bob"},
        }
        assert results[1]["type"] == "ack"
        assert (results[2]["reason"], results[2]["field"]) == ("unique", "email")


_values = st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.text(max_size=6)
_bodies = st.dictionaries(st.sampled_from(["email", "room", "nick", "age", "token"]), _values)


@both_databases
@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=_bodies, record_body=_bodies)
def test_whatever_a_client_writes_is_answered_never_a_500(
    alice: httpx.Client, body: dict[str, Any], record_body: dict[str, Any]
) -> None:
    """Random bodies against unique, multi-column unique, check and not-null fields."""
    post = alice.post(url("test_accounts"), json=body)
    assert post.status_code in (201, 400, 409), post.text
    if post.status_code != 201:
        error = post.json()["error"]
        assert post.status_code == 400 or error["reason"] == "unique", error
    records = alice.get(url("test_accounts")).json()["items"]
    if records:
        patch = alice.patch(url("test_accounts", records[0]["id"]), json=record_body)
        assert patch.status_code in (200, 400, 409), patch.text
