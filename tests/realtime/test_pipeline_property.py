"""A property of the whole pipeline, from commit to connection queue (no sockets):
random interleavings of commits (on the loop's thread and on worker threads, with
rollbacks and savepoints), subscribes (plain, with `since`, with a snapshot, with a
filter) and disconnects give each subscriber exactly the committed changes it may read,
in commit order, with no gap and no duplicate; a record an update makes readable or
unreadable to them arrives as a create or leaves as a delete.

The ground truth does not come from the system under test: every transaction bumps a
clock row (so versions are the commit order, whatever thread commits), and every write
stamps its row with a number of its own, which identifies each change in the events.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart import Quart

from runtime import BaseModel, Realtime
from runtime.config import RealtimeConfig
from runtime.db import database, open_database
from runtime.realtime.connections.connection import Connection
from runtime.realtime.patterns import parse_pattern
from runtime.realtime.protocol import Subscribe
from tests.databases import PostgresServer
from tests.support import TIMEOUT


def _visible(user: Any, record: Prop) -> bool:
    return record.value % 2 == 0 or record.owner == user.id


class Prop(BaseModel):
    owner = peewee.IntegerField()
    value = peewee.IntegerField()
    version = peewee.IntegerField()  # the commit that wrote it
    stamp = peewee.IntegerField()  # the write that wrote it

    read_rule = _visible
    write_rule = "nobody"

    class Meta:
        table_name = "test_prop"


class Clock(peewee.Model):
    """Not a collection: the commit counter."""

    version = peewee.IntegerField(default=0)

    class Meta:
        database = database
        table_name = "test_prop_clock"


@dataclass(frozen=True)
class User:
    id: int
    is_admin: bool = False


# -- the plan -----------------------------------------------------------------------

create = st.tuples(st.just("create"), st.integers(1, 2), st.integers(0, 9))
update = st.tuples(st.just("update"), st.integers(0, 50), st.integers(0, 9))
delete = st.tuples(st.just("delete"), st.integers(0, 50))
write = st.one_of(create, create, create, update, update, delete)
savepoint = st.tuples(
    st.just("savepoint"),
    st.lists(
        st.one_of(
            write, st.tuples(st.just("savepoint"), st.lists(write, max_size=2), st.booleans())
        ),
        max_size=3,
    ),
    st.booleans(),  # rolled back
)
ops = st.one_of(write, write, write, savepoint)
rarely = st.sampled_from([False, False, False, True])
commit = st.tuples(
    st.just("commit"),
    st.lists(ops, min_size=1, max_size=4),
    rarely,  # rolled back
    st.booleans(),  # on a worker thread (not joined until later)
)
subscribe = st.tuples(
    st.just("subscribe"),
    st.integers(0, 3),  # which client
    st.integers(1, 2),  # as which user
    st.sampled_from(["plain", "since", "snapshot"]),
    st.booleans(),  # with a filter on owner
)
steps = st.lists(
    st.one_of(
        commit,
        subscribe,
        st.tuples(st.just("disconnect"), st.integers(0, 3)),
        st.tuples(st.just("join")),
    ),
    min_size=2,
    max_size=25,
)


# -- running it ---------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    action: str
    id: int
    owner: int
    value: int
    stamp: int

    @property
    def key(self) -> tuple[str, int, int]:
        return self.action, self.id, self.stamp


def _key(event: dict[str, Any]) -> tuple[str, int, int]:
    record = event["record"]
    return event["action"], record["id"], record["stamp"]


@dataclass
class Watcher:
    conn: Connection
    user: User
    filtered: bool
    snapshot: dict[int, tuple[int, int]] | None = None  # id -> (value, stamp)
    resumed_from: Watcher | None = None  # the connection it resumed after the last event of
    events: list[tuple[str, int, int]] = field(default_factory=list)
    last_id: str | None = None

    def take(self) -> None:
        for text in self.conn.take_queued():
            frame = json.loads(text)
            if frame["type"] == "connected":  # the first frame of every connection
                assert self.events == [] and self.last_id is None
            elif frame["type"] == "event":
                self.events.append(_key(frame))
                self.last_id = frame["id"]
            elif frame["type"] == "subscribed":
                if frame.get("snapshot") is not None:
                    records = frame["snapshot"]["records"]
                    assert frame["snapshot"]["complete"] is True
                    self.snapshot = {r["id"]: (r["value"], r["stamp"]) for r in records}
                if self.resumed_from is not None:
                    assert frame["recovered"] is True
            else:
                raise AssertionError(f"unexpected frame {frame}")

    def sees(self, change: Change) -> bool:
        readable = change.value % 2 == 0 or change.owner == self.user.id
        return readable and (not self.filtered or change.owner == self.user.id)


class World:
    """Runs the commits and keeps the truth: what each committed transaction did."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.stamps = itertools.count(1)
        self.lock = threading.Lock()
        self.truth: list[tuple[int, list[Change]]] = []  # (version, changes) per commit
        self.threads: list[threading.Thread] = []

    def commit(self, plan: list[Any], rollback: bool) -> None:
        # Each transaction holds the clock from its first read: SQLite's write lock, taken
        # at BEGIN, or PostgreSQL's lock on the clock's row.
        if self.backend == "sqlite":
            transaction, read = database.atomic("IMMEDIATE"), lambda: Clock.get_by_id(1)
        else:
            transaction, read = database.atomic(), Clock.select().for_update().get
        try:
            with transaction as txn:
                clock = read()
                clock.version += 1
                clock.save()
                changes = self._ops(plan, clock.version)
                if rollback:
                    txn.rollback()
                    return
            with self.lock:
                self.truth.append((clock.version, changes))
        finally:
            if threading.current_thread() is not threading.main_thread():
                database.close()

    def _ops(self, plan: list[Any], version: int) -> list[Change]:
        changes: list[Change] = []
        for op in plan:
            kind = op[0]
            if kind == "savepoint":
                with database.atomic() as savepoint:
                    inner = self._ops(op[1], version)
                    if op[2]:
                        savepoint.rollback()
                        inner = []
                changes.extend(inner)
                continue
            if kind == "create":
                stamp = next(self.stamps)
                row = Prop.create(owner=op[1], value=op[2], version=version, stamp=stamp)
                changes.append(Change("create", row.id, row.owner, row.value, stamp))
                continue
            rows = list(Prop.select().order_by(Prop.id))
            if not rows:
                continue
            row = rows[op[1] % len(rows)]
            if kind == "update":
                row.value, row.version, row.stamp = op[2], version, next(self.stamps)
                row.save()
                changes.append(Change("update", row.id, row.owner, row.value, row.stamp))
            else:
                row.delete_instance()
                changes.append(Change("delete", row.id, row.owner, row.value, row.stamp))
        return changes

    def join(self) -> None:
        for thread in self.threads:
            thread.join(TIMEOUT)
            assert not thread.is_alive()
        self.threads.clear()

    def history(self) -> tuple[list[Change], list[int]]:
        """Every committed change in commit order, and where each commit starts."""
        stream: list[Change] = []
        starts: list[int] = []
        for _, changes in sorted(self.truth, key=lambda item: item[0]):
            starts.append(len(stream))
            stream.extend(changes)
        starts.append(len(stream))
        return stream, starts


def _transitions(watcher: Watcher, stream: list[Change]) -> list[tuple[int, Any]]:
    """What the reader hears of each change it hears of, as (its place in the stream, the
    event's key): an update that makes the record readable to them a create, one that
    makes it unreadable a delete of what they saw last."""
    heard: list[tuple[int, Any]] = []
    state: dict[int, Change] = {}
    for position, change in enumerate(stream):
        before = state.get(change.id)
        was = before is not None and watcher.sees(before)
        if change.action == "delete":
            state.pop(change.id, None)
            if was:
                heard.append((position, change.key))
            continue
        state[change.id] = change
        now = watcher.sees(change)
        if change.action == "create" or (now and not was):
            if now:
                heard.append((position, ("create", change.id, change.stamp)))
        elif now:
            heard.append((position, change.key))
        elif was:
            assert before is not None
            heard.append((position, ("delete", change.id, before.stamp)))
    return heard


def _check(watcher: Watcher, stream: list[Change], starts: list[int], to_the_end: bool) -> None:
    got = watcher.events
    heard = _transitions(watcher, stream)
    if watcher.snapshot is not None:
        # The snapshot is what the reader could see after some number of commits, and
        # the events are exactly the changes it may see after those.
        state: dict[int, Change] = {}
        for position in range(len(stream) + 1):
            if position in starts:
                seen = {i: (c.value, c.stamp) for i, c in state.items() if watcher.sees(c)}
                wanted = [key for at, key in heard if at >= position]
                if seen == watcher.snapshot and _prefix(got, wanted, to_the_end):
                    return
            if position < len(stream):
                change = stream[position]
                if change.action == "delete":
                    state.pop(change.id, None)
                else:
                    state[change.id] = change
        raise AssertionError("the snapshot and the events do not meet: a gap or a duplicate")
    visible = [key for _, key in heard]
    if watcher.resumed_from is not None:
        # Where the connection it resumed from stood: the change of its last event.
        earlier = watcher.resumed_from
        positions = {key: at for at, key in _transitions(earlier, stream)}
        at = positions[earlier.events[-1]]
        wanted = [key for position, key in heard if position > at]
        assert _prefix(got, wanted, to_the_end), "a gap or a duplicate after resuming"
        return
    # A plain subscription: a contiguous run of what it may see, to the end if live.
    if got:
        start = visible.index(got[0])
        assert _prefix(got, visible[start:], to_the_end), "a gap or a duplicate"


def _prefix(got: list[Any], wanted: list[Any], whole: bool) -> bool:
    return got == wanted if whole else got == wanted[: len(got)]


async def _run(plan: list[Any], postgres: PostgresServer | None = None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = postgres.database() if postgres is not None else None
        open_database(url or str(Path(folder) / "prop.sqlite3"))
        database.create_tables([Prop, Clock])
        Clock.create(version=0)
        app = Quart("property")
        config = RealtimeConfig(history_size=100_000, replay_limit=100_000, send_queue_size=100_000)
        Realtime(app, config=config, models=[Prop])
        broker = app.extensions["realtime"].broker
        await app.startup()
        world = World("postgresql" if url else "sqlite")
        live: dict[int, Watcher] = {}
        done: list[Watcher] = []
        try:
            for step in plan:
                await _step(step, world, broker, live, done)
                for watcher in live.values():
                    watcher.take()
            world.join()
            await asyncio.wait_for(broker.flushed(), TIMEOUT)
            for watcher in live.values():
                watcher.take()
            stream, starts = world.history()
            for watcher in done:
                _check(watcher, stream, starts, to_the_end=False)
            for watcher in live.values():
                _check(watcher, stream, starts, to_the_end=True)
        finally:
            world.join()
            await app.shutdown()
            database.close()
            if postgres is not None and url is not None:
                postgres.drop(url)


async def _step(
    step: Any, world: World, broker: Any, live: dict[int, Watcher], done: list[Watcher]
) -> None:
    kind = step[0]
    if kind == "commit":
        _, plan, rollback, threaded = step
        if threaded:
            thread = threading.Thread(target=world.commit, args=(plan, rollback))
            world.threads.append(thread)
            thread.start()
        else:
            world.commit(plan, rollback)
    elif kind == "join":
        world.join()
        await broker.flushed()
    elif kind == "disconnect":
        watcher = live.pop(step[1], None)
        if watcher is not None:
            watcher.take()
            broker.disconnect(watcher.conn)
            done.append(watcher)
    else:
        _, client, user_id, mode, filtered = step
        previous = live.pop(client, None)
        if previous is not None:
            previous.take()
            broker.disconnect(previous.conn)
            done.append(previous)
        conn = Connection(
            user=User(user_id), session_hash=None, transport="test", max_queue=1_000_000
        )
        watcher = Watcher(conn, User(user_id), filtered)
        since = None
        if mode == "since" and previous is not None and previous.last_id is not None:
            since, watcher.resumed_from = previous.last_id, previous
        command = Subscribe(
            1,
            parse_pattern("test_prop"),
            since=since,
            filter={"owner": user_id} if filtered else None,
            snapshot=mode == "snapshot",
        )
        broker.connect(conn)
        live[client] = watcher
        await broker.subscribing.subscribe(conn, [command])


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same plans on every run; the threads still vary the timing
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps)
def test_each_subscriber_gets_exactly_what_committed_and_it_may_read(plan: list[Any]) -> None:
    asyncio.run(_run(plan))


@settings(
    max_examples=40,  # each on a database of its own: fewer, to keep the suite quick
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps)
def test_the_same_on_postgresql(postgres: PostgresServer, plan: list[Any]) -> None:
    asyncio.run(_run(plan, postgres))
