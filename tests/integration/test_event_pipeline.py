"""The event pipeline's promises, checked from outside over a real server: commit order
whatever thread commits, rules that see real field values on both paths, failures that
stay with one reader, and the record's topic in every event."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import peewee
import pytest

from runtime import BaseModel
from runtime.db import database
from runtime.demo import Message
from runtime.users import User
from tests.databases import both_databases
from tests.realtime_client import Client, api_session
from tests.support import TIMEOUT, LiveServer


@contextlib.contextmanager
def statements_on_the_loop(server: LiveServer, trace: Callable[[str], None]) -> Iterator[None]:
    """`trace(sql)` for each statement the server's loop thread sends, as it starts (on
    either database: the tracking database's own execute_sql, wrapped)."""
    loop_thread = server.call(threading.current_thread)
    real = database.obj
    execute_sql = real.execute_sql

    def traced(sql: str, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is loop_thread:
            trace(sql)
        return execute_sql(sql, *args, **kwargs)

    begin = real.begin

    def traced_begin(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is loop_thread:
            trace("BEGIN")  # SQLite's IMMEDIATE waits here for another writer
        return begin(*args, **kwargs)

    real.execute_sql = traced
    real.begin = traced_begin
    try:
        yield
    finally:
        del real.execute_sql
        del real.begin


def locked_transaction(backend: str, counter: Counter) -> tuple[Any, Callable[[], Counter]]:
    """A transaction that holds the counter from its first read, and that read."""
    if backend == "sqlite":  # the database's write lock, taken at BEGIN
        return database.atomic("IMMEDIATE"), lambda: Counter.get_by_id(counter.id)
    query = Counter.select().where(Counter.id == counter.id).for_update()  # the row's lock
    return database.atomic(), query.get


class Counter(BaseModel):
    """Its value counts commits: event N must carry value N."""

    value = peewee.IntegerField(default=0)

    read_rule = "public"
    write_rule = "nobody"

    class Meta:
        table_name = "test_counters"


# What the typed rule saw, per path: [(field name, type name)].
seen_by_rule: list[tuple[str, dict[str, str]]] = []


def _typed_rule(user: Any, record: Typed) -> bool:
    seen_by_rule.append(
        (record.label, {name: type(record.__data__.get(name)).__name__ for name in TYPED_FIELDS})
    )
    # Comparisons that only work on real values: a str would raise TypeError here.
    return bool(
        record.published_at <= datetime.datetime.now()
        and record.day <= datetime.date.today()
        and record.price > decimal.Decimal("1")
        and record.at < datetime.time(23, 59)
        and isinstance(record.token, uuid.UUID)
        and record.flag is True
        and record.blob.startswith(b"\x00")
        and record.ratio > 0.5
        and record.owner_id == user.id
    )


TYPED_FIELDS = (
    "published_at",
    "day",
    "at",
    "price",
    "token",
    "flag",
    "blob",
    "ratio",
    "big",
    "owner",
    "stamp",
    "address",
    "binary_token",
    "double",
    "small",
    "code",
    "notes",
    "bits",
)


class Typed(BaseModel):
    """Every kind of field Peewee ships that a rule might look at."""

    label = peewee.CharField()
    published_at = peewee.DateTimeField()
    day = peewee.DateField()
    at = peewee.TimeField()
    price = peewee.DecimalField(decimal_places=2)
    token = peewee.UUIDField()
    flag = peewee.BooleanField()
    blob = peewee.BlobField()
    ratio = peewee.FloatField()
    big = peewee.BigIntegerField()
    owner = peewee.ForeignKeyField(User)
    stamp = peewee.TimestampField()
    address = peewee.IPField()
    binary_token = peewee.BinaryUUIDField()
    double = peewee.DoubleField()
    small = peewee.SmallIntegerField()
    code = peewee.FixedCharField(max_length=3)
    notes = peewee.TextField()
    bits = peewee.BitField()

    read_rule = _typed_rule
    write_rule = "nobody"

    class Meta:
        table_name = "test_typed"


def _fragile_rule(user: Any, record: Fragile) -> bool:
    if record.label == "boom":
        raise RuntimeError("a bug in the app's read rule")
    return True


class Fragile(BaseModel):
    label = peewee.CharField()

    read_rule = _fragile_rule
    write_rule = "nobody"

    class Meta:
        table_name = "test_fragile"


class Slugged(BaseModel):
    """A primary key that is not called id."""

    slug = peewee.CharField(primary_key=True)
    title = peewee.CharField(default="")

    read_rule = "public"
    write_rule = "nobody"

    class Meta:
        table_name = "test_slugged"


@both_databases
async def test_a_worker_commit_before_the_apis_is_published_before_it(
    server: LiveServer, users: dict[str, User]
) -> None:
    """The observed case: a worker holds a transaction on a record, the API's PATCH of
    the same record waits for it and commits after it; subscribers must see the
    worker's update first and the API's (the row's final value) last."""
    message = Message.create(text="original", author=users["alice"])
    api_waits = threading.Event()
    worker_wrote = threading.Event()

    def trace(sql: str) -> None:
        # Where the API's write waits: PostgreSQL's lock of the row (the update reads
        # the row's values FOR UPDATE before writing), SQLite's BEGIN (IMMEDIATE) for
        # the write lock.
        sqlite = isinstance(database.obj, peewee.SqliteDatabase)
        locks_row = sql.startswith("UPDATE") or sql.endswith("FOR UPDATE")
        if (locks_row and '"messages"' in sql) or (sql == "BEGIN" and sqlite):
            api_waits.set()

    def worker() -> None:
        with database.atomic():
            mine = Message.get_by_id(message.id)
            mine.text = "worker"
            mine.save()
            worker_wrote.set()
            # Hold the write lock (SQLite) or the row's (PostgreSQL) until the API's
            # UPDATE is waiting for it.
            assert api_waits.wait(TIMEOUT)
        database.close()

    with statements_on_the_loop(server, trace):
        async with await Client.connect(server) as watcher, api_session(server, "alice") as alice:
            await watcher.ok_subscribe(f"messages/{message.id}")
            thread = threading.Thread(target=worker)
            thread.start()
            assert await asyncio.to_thread(worker_wrote.wait, TIMEOUT)
            response = await alice.patch(
                f"/api/collections/messages/records/{message.id}", json={"text": "api"}
            )
            assert response.status_code == 200
            await asyncio.to_thread(thread.join, TIMEOUT)
            events = await watcher.events(2)
            assert [e["record"]["text"] for e in events] == ["worker", "api"]
            assert Message.get_by_id(message.id).text == "api"  # what the row ended with


@both_databases
async def test_events_of_many_threads_leave_in_commit_order(
    server: LiveServer, backend: str
) -> None:
    """Threads increment one counter, each commit one step: the values the events carry
    must be 1, 2, 3 … in the order they arrive."""
    counter = Counter.create()
    threads, rounds = 4, 25

    def bulk() -> None:  # UPDATE … SET value = value + 1, announced through RETURNING
        for _ in range(rounds):
            Counter.update(value=Counter.value + 1).where(Counter.id == counter.id).execute()
        database.close()

    def read_modify_write() -> None:  # save() in a transaction that locks at once
        for _ in range(rounds):
            transaction, read = locked_transaction(backend, counter)
            with transaction:
                row = read()
                row.value += 1
                row.save()
        database.close()

    async with await Client.connect(server) as watcher:
        await watcher.ok_subscribe(f"test_counters/{counter.id}")
        workers = [
            threading.Thread(target=bulk if i % 2 else read_modify_write) for i in range(threads)
        ]
        for thread in workers:
            thread.start()
        events = await watcher.events(threads * rounds)
        for thread in workers:
            await asyncio.to_thread(thread.join, TIMEOUT)
        assert [e["record"]["value"] for e in events] == list(range(1, threads * rounds + 1))
        await watcher.expect_silence()


def _typed(label: str, owner: User, *, published: datetime.datetime) -> Typed:
    typed: Typed = Typed.create(
        label=label,
        published_at=published,
        day=published.date(),
        at=datetime.time(12, 30, 15),
        price="12.50",  # set as text: stored and read back as a Decimal
        token=uuid.uuid4(),
        flag=1,  # set as an int: read back as a bool
        blob=b"\x00\x01binary",
        ratio=1,
        big=2**40,
        owner=owner,
        stamp=datetime.datetime(2026, 1, 2, 3, 4, 5),
        address="10.1.2.3",
        binary_token=uuid.uuid4(),
        double="2.5",  # set as text: read back as a float
        small=7,
        code="abc",
        notes="long text",
        bits=5,
    )
    return typed


@both_databases
async def test_rules_see_real_field_values_on_both_paths(
    server: LiveServer, users: dict[str, User], backend: str
) -> None:
    alice = users["alice"]
    past = datetime.datetime.now() - datetime.timedelta(days=1)
    future = datetime.datetime.now() + datetime.timedelta(days=365)
    async with (
        await Client.connect(server, user="alice") as client,
        api_session(server, "alice") as http,
    ):
        await client.ok_subscribe("test_typed")
        seen_by_rule.clear()
        hidden_one = _typed("future", alice, published=future)
        visible_one = _typed("past", alice, published=past)
        event = await client.recv_type("event")
        await client.expect_silence()  # the future one failed the rule: not sent
        assert event["record"]["label"] == "past"
        assert event["topic"] == f"test_typed/{visible_one.id}"
        through_events = dict(seen_by_rule)
        seen_by_rule.clear()
        records = "/api/collections/test_typed/records"
        assert (await http.get(f"{records}/{visible_one.id}")).status_code == 200
        assert (await http.get(f"{records}/{hidden_one.id}")).status_code == 404
        through_api = dict(seen_by_rule)
    assert through_events == through_api  # the same types, field by field, both records
    assert through_api["past"] == {
        "published_at": "datetime",
        "day": "date",
        "at": "time",
        "price": "Decimal",
        "token": "UUID",
        "flag": "bool",
        "blob": "bytes",
        "ratio": "float",
        "big": "int",
        "owner": "int",
        "stamp": "datetime",
        "address": "str",
        "binary_token": "UUID",
        "double": "float",
        "small": "int",
        "code": "str",
        "notes": "str",
        "bits": "int",
    }
    # What is sent is the same JSON on both paths too: what the database kept.
    sent = event["record"]
    async with api_session(server, "alice") as http:
        response = await http.get(f"/api/collections/test_typed/records/{visible_one.id}")
    assert response.json() == sent
    kept = "12.5" if backend == "sqlite" else "12.50"  # NUMERIC(10, 2) keeps the scale
    assert sent["price"] == kept and sent["blob"] == "AAFiaW5hcnk=" and sent["flag"] is True
    assert visible_one.price == decimal.Decimal("12.5") and visible_one.flag is True


async def test_a_failing_rule_costs_only_its_reader_that_event(
    server: LiveServer, users: dict[str, User], caplog: pytest.LogCaptureFixture
) -> None:
    """The observed case: in one transaction a record whose rule raises, another of the
    same collection and one of an unrelated public collection."""
    async with (
        await Client.connect(server, user="bob") as bob,
        await Client.connect(server) as visitor,
    ):
        await bob.ok_subscribe("test_fragile")
        await bob.ok_subscribe("messages")
        await visitor.ok_subscribe("messages")
        with caplog.at_level(logging.ERROR, logger="runtime.realtime"), database.atomic():
            Fragile.create(label="boom")
            Fragile.create(label="fine")
            Message.create(text="public", author=users["alice"])
        got = await bob.events(2)
        labels = [(e["collection"], e["record"].get("label") or e["record"]["text"]) for e in got]
        assert labels == [("test_fragile", "fine"), ("messages", "public")]
        assert (await visitor.recv_type("event"))["record"]["text"] == "public"
        await bob.expect_silence()
        await visitor.expect_silence()
        # A snapshot skips the failing record and returns the rest.
        reply = await bob.ok_subscribe("test_fragile", snapshot=True)
        assert [r["label"] for r in reply["snapshot"]["records"]] == ["fine"]
    failures = [r for r in caplog.records if "test_fragile" in r.getMessage()]
    assert failures and "_fragile_rule" in failures[0].getMessage()
    assert len(failures) == 1  # logged once, counted always
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        metrics = (await http.get("/realtime/metrics")).text
    assert (
        'runtime_realtime_delivery_errors_total{collection="test_fragile",stage="read rule"} 2'
        in metrics
    )


async def test_events_carry_the_records_topic(server: LiveServer) -> None:
    async with await Client.connect(server) as client:
        await client.ok_subscribe("test_slugged")
        Slugged.create(slug="hello-world", title="Hi")
        event = await client.recv_type("event")
        assert event["topic"] == "test_slugged/hello-world"
        assert "id" not in event["record"] and event["record"]["slug"] == "hello-world"
        one = await client.ok_subscribe("test_slugged/hello-world", snapshot=True)
        assert one["snapshot"]["records"] == [event["record"]]


async def test_snapshot_order_and_limit(server: LiveServer, users: dict[str, User]) -> None:
    for text in ("b", "c", "a"):
        Message.create(text=text, author=users["alice"])
    async with await Client.connect(server) as client:
        newest = (await client.ok_subscribe("messages", snapshot=True))["snapshot"]
        assert [r["text"] for r in newest["records"]] == ["a", "c", "b"]
        by_text = await client.ok_subscribe("messages", snapshot={"sort": "text", "limit": 2})
        snapshot = by_text["snapshot"]
        assert [r["text"] for r in snapshot["records"]] == ["a", "b"]
        assert snapshot["sort"] == "text" and snapshot["complete"] is False
        for bad in ({"sort": "nope"}, {"sort": "text;drop"}, {"limit": 0}, "yes"):
            reply = await client.subscribe("messages", snapshot=bad)
            assert reply["type"] == "error" and reply["code"] == "bad_request", reply


@both_databases
async def test_snapshots_and_live_events_meet_without_gap_or_duplicate(
    server: LiveServer, users: dict[str, User]
) -> None:
    """A thread keeps creating messages while clients subscribe with a snapshot: each
    message is in a client's snapshot or arrives as a live event after it, never both,
    never neither."""
    alice, total = users["alice"], 200
    created: list[int] = []
    go = threading.Event()

    def writer() -> None:
        go.wait(TIMEOUT)
        for i in range(total):
            created.append(Message.create(text=f"m{i}", author=alice).id)
        database.close()

    thread = threading.Thread(target=writer)
    thread.start()
    clients = [await Client.connect(server) for _ in range(8)]
    try:
        go.set()
        seen: list[tuple[list[int], list[int]]] = []
        for client in clients:  # subscribing one after another while the writer runs
            reply = await client.ok_subscribe("messages", snapshot={"limit": 500})
            seen.append(([r["id"] for r in reply["snapshot"]["records"]], []))
        await asyncio.to_thread(thread.join, TIMEOUT)
        for client, (snapshot, live) in zip(clients, seen, strict=True):
            while len(snapshot) + len(live) < total:
                live.append((await client.recv_type("event"))["record"]["id"])
            await client.expect_silence()
            assert sorted(snapshot + live) == sorted(created)  # no gap, no duplicate
            assert live == sorted(live)  # live events in commit order
    finally:
        for client in clients:
            await client.ws.close()


async def test_broadcast_from_async_code_and_from_the_loop_thread(server: LiveServer) -> None:
    app: Any = server.app
    async with await Client.connect(server) as client:
        await client.ok_subscribe("messages")
        first = await server.run(app.realtime_broadcast_async("a", {}, collection="messages"))
        second = server.call(lambda: app.realtime_broadcast("b", {}, collection="messages"))
        events = await client.events(2)
        assert [(e["id"], e["name"]) for e in events] == [(first, "a"), (second, "b")]


async def test_custom_data_is_copied_when_broadcast(server: LiveServer) -> None:
    app: Any = server.app
    data = {"n": 1, "when": datetime.date(2026, 1, 2), "price": decimal.Decimal("2.50")}
    async with await Client.connect(server) as client:
        await client.ok_subscribe("messages")
        start = app.realtime_broadcast("x", data, collection="messages")
        data["n"] = 2  # changed after broadcasting: neither the event nor its replay change
        assert (await client.recv_type("event"))["data"] == {
            "n": 1,
            "when": "2026-01-02",
            "price": "2.50",  # Decimals as exact text, as in records
        }
        app.realtime_broadcast("y", None, collection="messages")
    async with await Client.connect(server) as again:
        await again.ok_subscribe("messages", since=start)
        assert (await again.recv_type("event"))["name"] == "y"
    with pytest.raises(ValueError, match="nested"):
        deep: list[Any] = []
        for _ in range(200):
            deep = [deep]
        app.realtime_broadcast("deep", deep)


@both_databases
async def test_no_commit_completes_while_a_snapshot_is_read(
    server: LiveServer, users: dict[str, User]
) -> None:
    """A snapshot is read under the commit lock: a worker's commit that comes while the
    snapshot's SELECT runs waits for it, and is then a live event after the position."""
    alice = users["alice"]
    Message.create(text="before", author=alice)
    outcome: dict[str, Any] = {}

    def commit_during_the_snapshot() -> None:
        Message.create(text="during", author=alice)
        database.close()

    def trace(sql: str) -> None:
        if sql.startswith("SELECT") and '"messages"' in sql and "worker" not in outcome:
            worker = outcome["worker"] = threading.Thread(target=commit_during_the_snapshot)
            worker.start()
            # Bounded: a commit that could complete now would do so at once.
            worker.join(0.5)
            outcome["waited"] = worker.is_alive()

    try:
        with statements_on_the_loop(server, trace):
            async with await Client.connect(server) as client:
                reply = await client.ok_subscribe("messages", snapshot=True)
                assert [r["text"] for r in reply["snapshot"]["records"]] == ["before"]
                event = await client.recv_type("event")
                assert event["record"]["text"] == "during"
                position = reply["snapshot"]["position"]
                assert int(event["id"].rsplit("-", 1)[1]) == int(position.rsplit("-", 1)[1]) + 1
    finally:
        await asyncio.to_thread(outcome["worker"].join, TIMEOUT)
    assert outcome["waited"] is True


class Moody(BaseModel):
    """visible_fields() fails for bob (app code with a bug)."""

    label = peewee.CharField()

    read_rule = "authenticated"
    write_rule = "nobody"

    class Meta:
        table_name = "test_moody"

    @classmethod
    def visible_fields(cls, user: Any) -> tuple[str, ...]:
        if user is not None and user.username == "bob":
            raise RuntimeError("a bug in visible_fields")
        return super().visible_fields(user)


async def test_app_code_failing_in_a_subscribe_costs_that_subscription_only(
    server: LiveServer, users: dict[str, User]
) -> None:
    async with await Client.connect(server, user="bob") as bob:
        refused = await bob.subscribe("test_moody", snapshot={"sort": "label"})
        assert refused["type"] == "error" and refused["code"] == "forbidden"
        await bob.ok_subscribe("messages")  # the connection goes on
        Message.create(text="still here", author=users["alice"])
        assert (await bob.recv_type("event"))["record"]["text"] == "still here"


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_snapshot_gives_up_on_a_table_lock_rather_than_stall_the_loop(
    server: LiveServer, users: dict[str, User]
) -> None:
    """A worker locks the messages table, then commits; a snapshot of messages is read
    meanwhile, with commits held. Waiting for the lock would wait for a commit that
    waits for the snapshot (the loop stalled for good): the snapshot gives up, the
    client hears `unavailable` with `retry_after`, and asking again works."""
    Message.create(text="before", author=users["alice"])
    snapshot_reads = threading.Event()
    locked = threading.Event()

    def trace(sql: str) -> None:
        if sql.startswith("SELECT") and '"messages"' in sql:
            snapshot_reads.set()

    def worker() -> None:
        with database.atomic():
            database.execute_sql('LOCK TABLE "messages" IN ACCESS EXCLUSIVE MODE')
            locked.set()
            assert snapshot_reads.wait(TIMEOUT)
        database.close()

    with statements_on_the_loop(server, trace):
        async with await Client.connect(server, user="alice") as alice:
            thread = threading.Thread(target=worker)
            thread.start()
            assert await asyncio.to_thread(locked.wait, TIMEOUT)
            refused = await alice.subscribe("messages", snapshot=True)
            assert refused["type"] == "error" and refused["code"] == "unavailable", refused
            assert refused["retry_after"] > 0
            await asyncio.to_thread(thread.join, TIMEOUT)
            assert not thread.is_alive()
            again = await alice.ok_subscribe("messages", snapshot=True)
            assert [r["text"] for r in again["snapshot"]["records"]] == ["before"]
