"""The transactional outbox on SQLite and PostgreSQL: each change's event is a row of
its own transaction (none for a rollback), rows are read back in commit order, and on
PostgreSQL a transaction that takes its ids and commits later is neither skipped nor
read out of order by a relay reading meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import peewee
import pytest

from runtime import BaseModel, registry
from runtime.base_model import collections
from runtime.db import TrackingPostgresqlDatabase, on_commit, tracking_database
from runtime.realtime.capture.outbox import OutboxTable, OutboxWriter
from runtime.realtime.events import Event
from runtime.realtime.publishing.codec import EventCodec
from tests.databases import both_databases
from tests.support import TIMEOUT

CODEC = EventCodec(Event)


class World:
    def __init__(self, db: Any, item: type[BaseModel]) -> None:
        self.db = db
        self.item = item
        self.writer = OutboxWriter.for_database(db, CODEC)
        self.table: OutboxTable = self.writer.table
        self.table.ensure()

    def rows(self, after: int = 0) -> list[tuple[int, Event]]:
        return [(i, CODEC.decode(p)) for i, p in self.table.read_after(after, None, 10_000)]

    def texts(self, after: int = 0) -> list[str]:
        return [event.values["text"] for _, event in self.rows(after) if event.values]


@pytest.fixture
def world(database_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setattr(registry, "_registry", collections())
    proxy = peewee.DatabaseProxy()

    class Item(BaseModel):
        text = peewee.CharField()
        secret = peewee.CharField(default="s")
        read_rule = "public"
        hidden = ("secret",)

        class Meta:
            database = proxy
            table_name = "outbox_items"

    db = tracking_database(database_settings.get("url") or database_settings["path"])
    proxy.initialize(db)
    db.connect()
    db.create_tables([Item])
    try:
        yield World(db, Item)
    finally:
        db.close()


@both_databases
def test_each_change_is_a_row_of_its_own_transaction(world: World) -> None:
    item = world.item
    with world.db.atomic():
        first = item.create(text="one")
        item.create(text="two")
    with pytest.raises(RuntimeError), world.db.atomic():
        item.create(text="rolled back")
        raise RuntimeError
    with world.db.atomic():
        item.create(text="kept")
        with world.db.atomic() as savepoint:
            item.create(text="savepoint rolled back")
            savepoint.rollback()
    first.text = "one, edited"
    first.save()  # a transaction of its own
    rows = world.rows()
    assert [event.values["text"] for _, event in rows if event.values] == [
        "one",
        "two",
        "kept",
        "one, edited",
    ]
    ids = [row_id for row_id, _ in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    events = [event for _, event in rows]
    assert [e.action for e in events] == ["create", "create", "create", "update"]
    assert all(e.collection == "outbox_items" and e.values for e in events)
    assert all("secret" not in (e.values or {}) for e in events)  # hidden fields stay out
    keys = [e.key for e in events]
    assert all(keys) and len(set(keys)) == len(keys)  # every relay publishes it by this key
    assert world.writer.last_committed == ids[-1]


@both_databases
def test_rows_are_read_in_commit_order_by_a_reader_running_meanwhile(world: World) -> None:
    """Writers on several threads, a reader reading after its last id as it goes: it
    reads every row once, in the order the commits were made."""
    item = world.item
    written: list[str] = []
    reader_db = tracking_database(world.db.database)  # a connection of its own
    reader = OutboxTable(reader_db)
    done = threading.Event()
    seen: list[int] = []

    def read() -> None:
        cursor = 0
        while True:
            committed.clear()  # before reading: a commit meanwhile wakes the next read
            finished = done.is_set()
            for row_id, _ in reader.read_after(cursor, None, 1000):
                seen.append(row_id)
                cursor = row_id
            if finished:
                reader_db.close()  # this thread's connection
                return
            committed.wait(TIMEOUT)  # the next commit, then read again

    def write(worker: int) -> None:
        for n in range(25):
            with world.db.atomic():
                item.create(text=f"{worker}-{n}")
            written.append(f"{worker}-{n}")  # not the commit order: only what was written
        world.db.close()

    order: list[str] = []
    committed = threading.Event()

    def heard(changes: list[Any]) -> None:
        order.extend(c.data["text"] for c in changes)
        committed.set()

    receiver = on_commit.connect(heard)
    reading = threading.Thread(target=read)
    reading.start()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    try:
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join(TIMEOUT * 6)
    finally:
        done.set()
        committed.set()  # the reader reads once more and ends
        reading.join(TIMEOUT * 6)
        on_commit.disconnect(receiver)
    assert len(order) == len(written) == 100
    assert world.texts() == order  # rows in commit order (receivers hear commits in order)
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 100  # none skipped


def test_a_transaction_that_commits_later_is_neither_skipped_nor_read_out_of_order(
    postgres: Any,
) -> None:
    """PostgreSQL: the classic polling-outbox bug. T1 writes its row and has not
    committed; T2 (another process's writer: the commit lock of this process does not
    hold it) writes and would commit first, taking a higher id, and a reader after T2's
    row would never read T1's. The outbox's advisory lock makes T2 wait for T1."""
    url = postgres.database()
    first, second, third = (TrackingPostgresqlDatabase(url) for _ in range(3))
    try:
        OutboxTable(first).ensure()
        t1_written, t1_may_commit = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def t1() -> None:
            try:
                with first.atomic():
                    OutboxTable(first).insert([CODEC.encode(Event("custom", None, name="t1"))])
                    t1_written.set()
                    assert t1_may_commit.wait(TIMEOUT)
            except BaseException as error:
                errors.append(error)
            finally:
                first.close()  # this thread's connection

        def t2() -> None:
            try:
                with second.atomic():
                    OutboxTable(second).insert([CODEC.encode(Event("custom", None, name="t2"))])
            except BaseException as error:
                errors.append(error)
            finally:
                second.close()

        threads = [threading.Thread(target=t1), threading.Thread(target=t2)]
        threads[0].start()
        assert t1_written.wait(TIMEOUT)
        threads[1].start()
        _until_waiting_for_the_advisory_lock(third)
        # T2 waits before it takes an id: one taken first could be lower than the id of
        # a third writer that gets the lock before it, and commits before it.
        assert _last_id_given(third) == 1
        reader = OutboxTable(third)
        assert reader.read_after(0, None, 100) == []  # T1 uncommitted, T2 waits: nothing yet
        t1_may_commit.set()
        for thread in threads:
            thread.join(TIMEOUT)
        assert not errors
        rows = reader.read_after(0, None, 100)
        assert [CODEC.decode(payload).name for _, payload in rows] == ["t1", "t2"]
        assert rows[0][0] < rows[1][0]
    finally:
        for db in (first, second, third):
            db.close()
        postgres.drop(url)


def _last_id_given(db: TrackingPostgresqlDatabase) -> int:
    """The last id the outbox's sequence gave, committed or not."""
    sequence = db.execute_sql("SELECT pg_get_serial_sequence('runtime_outbox', 'id')").fetchone()
    last: int = db.execute_sql(f"SELECT last_value FROM {sequence[0]}").fetchone()[0]
    return last


def _until_waiting_for_the_advisory_lock(db: TrackingPostgresqlDatabase) -> None:
    """Until some transaction waits for the outbox's advisory lock (bounded)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        waiting = db.execute_sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()[0]
        if waiting:
            return
        time.sleep(0.01)  # pg_locks cannot be waited on
    raise AssertionError("the second writer never waited for the advisory lock")


@both_databases
def test_the_outbox_is_pruned_with_a_bound(world: World) -> None:
    table = world.table
    with world.db.atomic():
        world.item.insert_many([{"text": f"t{i}"} for i in range(1500)]).execute()
    newest = table.newest()
    assert table.waiting(0)[0] == 1500
    # Published rows go once old enough; past the bound the oldest go published or not.
    assert table.prune(relayed=200, older_than=time.time() + 1, keep_at_most=1000) == 300
    assert table.waiting(0)[0] == 1000
    assert [row_id for row_id, _ in table.read_after(0, None, 1)] == [newest - 999]
    table.set_relayed(newest)
    table.set_relayed(10)  # never backwards
    assert table.relayed() == newest


@both_databases
def test_pruning_keeps_the_newest_row_so_no_id_is_given_twice(world: World) -> None:
    """Every row published and old: all go but the newest, and the next write's id
    still follows it (on SQLite the next id is the highest + 1)."""
    table = world.table
    with world.db.atomic():
        world.item.insert_many([{"text": f"t{i}"} for i in range(5)]).execute()
    newest = table.newest()
    table.set_relayed(newest)
    assert table.prune(relayed=newest, older_than=time.time() + 1, keep_at_most=1) == 0
    assert [row_id for row_id, _ in table.read_after(0, None, 10)] == [newest]
    world.item.create(text="after")
    assert [row_id for row_id, _ in table.read_after(newest, None, 10)] == [newest + 1]
