"""The transactional outbox: each committed change's event is a row written in the
change's own transaction, so that no commit is lost before it is published and a write
from any process that shares the database (a server, a script, a job worker) is
announced by the relay of whichever server runs (runtime/realtime/broker/relay.py).

`runtime_outbox` holds one row per event: its id, the event as the codec encodes it
(its idempotency key included, so that every relay publishes it under the same key),
and when it was written. Ids are given in commit order, which is the order the relay
publishes in:

- SQLite has one writer at a time, from its first write to its COMMIT: the rows,
  written last in the transaction, get their ids in commit order (the highest id + 1).
  Pruning always keeps the newest row, so an id is never handed out again and a relay
  that has read up to an id misses nothing later. (Not AUTOINCREMENT, which promises
  the same by writing its counter to `sqlite_sequence` in every transaction: a third
  page per commit, about a fifth of what a create costs with its event row. Outboxes
  made with it before keep it, and work as ever.)
- PostgreSQL hands out sequence values when rows are inserted, not when they commit: a
  transaction that took a lower id could commit after one that took a higher id, and a
  relay reading "after the last id" would skip it (the classic polling-outbox bug). So
  the rows are written under a transaction-scoped advisory lock, taken just before
  them and held until COMMIT: between taking an id and committing, no other transaction
  can take one, so ids follow commit order. The same statement sends a notification
  (`pg_notify`), which PostgreSQL delivers at commit, to wake the relays at once; its
  payload names the writing process, whose own relay knows of those rows already.

`runtime_outbox_relayed` holds one number: the last id whose event was published (by
any process), where a relay starting up begins.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import peewee

from ...base_model import BaseModel, collection
from ...change_tracking import ChangeTracking
from ..events import Event, record_event

if TYPE_CHECKING:
    from ...db import RecordChange
    from ..publishing.codec import EventCodec

__all__ = [
    "CHANNEL",
    "OutboxEntry",
    "OutboxRow",
    "OutboxTable",
    "OutboxWriter",
    "has_outbox",
    "install_outboxes",
]

log = logging.getLogger("runtime.realtime")

TABLE = "runtime_outbox"
RELAYED = "runtime_outbox_relayed"
CHANNEL = "runtime_outbox"  # PostgreSQL's NOTIFY channel
# pg_advisory_xact_lock's key: "runtime" in ASCII. Held from the rows' ids to COMMIT.
ADVISORY_LOCK = 0x72756E74696D65
ROWS_PER_INSERT = 500  # rows in one INSERT statement (two bound parameters each)

OutboxRow = tuple[int, bytes]  # id, encoded event
OutboxEntry = tuple[int, Event]  # id, the event (this process's own commits)


def has_outbox(model: type[peewee.Model]) -> bool:
    """Whether `model`'s changes are written to an outbox (so the relay publishes them)."""
    db = model._meta.database
    real = db.obj if isinstance(db, peewee.Proxy) else db
    return getattr(real, "outbox", None) is not None


class OutboxTable:
    """The outbox's SQL on one database, SQLite or PostgreSQL. `origin`: what this
    process's notifications carry (PostgreSQL), so that its relay can tell them apart."""

    def __init__(self, database: ChangeTracking, origin: str = "") -> None:
        self.database = database
        self.postgres = isinstance(database, peewee.PostgresqlDatabase)
        self.origin = origin
        self._ready = False

    def _sql(self, sql: str, params: Any = ()) -> Any:
        return self.database.execute_sql(sql, params)

    def ensure(self) -> None:
        """Create the tables if they are missing (once per database object)."""
        if self._ready:
            return
        if self.postgres:
            row_id, payload, number = "BIGSERIAL PRIMARY KEY", "BYTEA", "DOUBLE PRECISION"
        else:
            row_id, payload, number = "INTEGER PRIMARY KEY", "BLOB", "REAL"
        statements = [
            f"CREATE TABLE IF NOT EXISTS {TABLE} "
            f"(id {row_id}, event {payload} NOT NULL, created {number} NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {RELAYED} "
            "(id INTEGER PRIMARY KEY, last_id BIGINT NOT NULL)",
            f"INSERT INTO {RELAYED} (id, last_id) VALUES (1, 0) ON CONFLICT DO NOTHING",
        ]
        try:
            for statement in statements:
                self._sql(statement)
        except peewee.IntegrityError:
            # PostgreSQL: another process created the same table at the same moment.
            if self.database.in_transaction():  # type: ignore[attr-defined]
                raise
            for statement in statements:
                self._sql(statement)
        self._ready = True

    # -- writing (in the committing transaction) ---------------------------------------

    def insert(self, payloads: list[bytes]) -> list[int]:
        """Write the events; their ids, in the same order (ascending)."""
        self.ensure()
        now = time.time()
        if len(payloads) == 1:  # a write's one event, most often: one statement
            if self.postgres:
                # The lock (taken before the row's id: the join waits for it) and the
                # wake-up sent at commit, with the row, in one round trip.
                cursor = self._sql(
                    "WITH held AS (SELECT pg_advisory_xact_lock(%s), pg_notify(%s, %s)) "
                    f"INSERT INTO {TABLE} (event, created) SELECT %s, %s FROM held "
                    "RETURNING id",
                    (ADVISORY_LOCK, CHANNEL, self.origin, payloads[0], now),
                )
                return [int(cursor.fetchone()[0])]
            cursor = self._sql(
                f"INSERT INTO {TABLE} (event, created) VALUES (?, ?)", (payloads[0], now)
            )
            return [int(cursor.lastrowid)]
        if self.postgres:  # one round trip: the lock, and the wake-up sent at commit
            self._sql(
                "SELECT pg_advisory_xact_lock(%s), pg_notify(%s, %s)",
                (ADVISORY_LOCK, CHANNEL, self.origin),
            )
        param = self.database.param  # type: ignore[attr-defined]
        ids: list[int] = []
        for start in range(0, len(payloads), ROWS_PER_INSERT):
            chunk = payloads[start : start + ROWS_PER_INSERT]
            values = ", ".join([f"({param}, {param})"] * len(chunk))
            params = [value for payload in chunk for value in (payload, now)]
            cursor = self._sql(
                f"INSERT INTO {TABLE} (event, created) VALUES {values} RETURNING id", params
            )
            # Each database numbers the rows of one INSERT in the order of its VALUES.
            ids += sorted(int(row[0]) for row in cursor.fetchall())
        return ids

    # -- reading and bookkeeping (the relay) -------------------------------------------

    def read_after(self, after: int, upto: int | None, limit: int) -> list[OutboxRow]:
        param = self.database.param  # type: ignore[attr-defined]
        if upto is None:
            sql = f"SELECT id, event FROM {TABLE} WHERE id > {param} ORDER BY id LIMIT {param}"
            params: tuple[int, ...] = (after, limit)
        else:
            sql = (
                f"SELECT id, event FROM {TABLE} WHERE id > {param} AND id <= {param} "
                f"ORDER BY id LIMIT {param}"
            )
            params = (after, upto, limit)
        return [(int(row[0]), bytes(row[1])) for row in self._sql(sql, params).fetchall()]

    def newest(self) -> int:
        """The highest id written (0 if none is left)."""
        return int(self._sql(f"SELECT COALESCE(MAX(id), 0) FROM {TABLE}").fetchone()[0])

    def relayed(self) -> int:
        """The last id whose event any process published."""
        row = self._sql(f"SELECT last_id FROM {RELAYED} WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def set_relayed(self, last_id: int) -> None:
        param = self.database.param  # type: ignore[attr-defined]
        with self.database.atomic():  # type: ignore[attr-defined]
            self._sql(
                f"UPDATE {RELAYED} SET last_id = {param} WHERE id = 1 AND last_id < {param}",
                (last_id, last_id),
            )

    def waiting(self, after: int) -> tuple[int, float | None]:
        """How many rows wait after `after`, and when the oldest of them was written."""
        param = self.database.param  # type: ignore[attr-defined]
        row = self._sql(
            f"SELECT COUNT(*), MIN(created) FROM {TABLE} WHERE id > {param}", (after,)
        ).fetchone()
        return int(row[0]), (float(row[1]) if row[1] is not None else None)

    def prune(self, relayed: int, older_than: float, keep_at_most: int) -> int:
        """Delete rows published before `older_than` (a Unix time), and the oldest rows
        past `keep_at_most` published or not; how many of those were unpublished. The
        newest row is kept whatever its age: on SQLite the next id follows it."""
        param = self.database.param  # type: ignore[attr-defined]
        lost = 0
        with self.database.atomic():  # type: ignore[attr-defined]
            newest = self.newest()
            self._sql(
                f"DELETE FROM {TABLE} WHERE id <= {param} AND id < {param} AND created < {param}",
                (relayed, newest, older_than),
            )
            bound = min(newest - keep_at_most, newest - 1)
            if bound > 0:
                lost = int(
                    self._sql(
                        f"SELECT COUNT(*) FROM {TABLE} WHERE id > {param} AND id <= {param}",
                        (relayed, bound),
                    ).fetchone()[0]
                )
                self._sql(f"DELETE FROM {TABLE} WHERE id <= {param}", (bound,))
        return lost


class OutboxWriter:
    """A database's `Outbox` for runtime.change_tracking: the events of its collections'
    changes, written as rows in the committing transaction (see the module docstring).
    One per database (`for_database`), whatever app or script writes through it: which
    collections an app serves is its relay's business.

    After a commit, the relays of this process that wait on the database hear of its
    rows, (id, event) in order, so that they need not read them back; and
    `last_committed` is the newest id this process committed, which direct publications
    wait behind.
    """

    def __init__(self, database: ChangeTracking, codec: EventCodec[Event]) -> None:
        self._key_prefix = "o" + secrets.token_hex(8) + "-"
        self.table = OutboxTable(database, origin=self._key_prefix)
        self._codec = codec
        self._pending = threading.local()  # the rows written, until their commit
        self._keys = itertools.count(1)
        self.last_committed = 0  # the newest id this process committed
        # The relays waiting here: each hears of the rows this process commits (on the
        # committing thread, under the commit lock: quickly).
        self.listeners: list[Callable[[list[OutboxEntry]], None]] = []
        self.unencodable = 0  # events dropped for a value the codec cannot carry

    @classmethod
    def for_database(cls, database: ChangeTracking, codec: EventCodec[Event]) -> OutboxWriter:
        """`database`'s writer, installed on it if it had none: its changes are written
        to its outbox from now on."""
        writer = database.outbox
        if not isinstance(writer, OutboxWriter):
            writer = cls(database, codec)
            database.outbox = writer
        return writer

    # -- the Outbox protocol -----------------------------------------------------------

    def write(self, database: ChangeTracking, changes: list[RecordChange]) -> None:
        events, payloads = self._encoded(changes)
        ids = self.table.insert(payloads) if payloads else []
        self._pending.rows = list(zip(ids, events, strict=True))

    def committed(self, database: ChangeTracking) -> None:
        rows: list[OutboxEntry] = getattr(self._pending, "rows", [])
        self._pending.rows = []
        if not rows:
            return
        self.last_committed = max(self.last_committed, rows[-1][0])
        for listener in list(self.listeners):
            listener(rows)

    def discarded(self, database: ChangeTracking) -> None:
        self._pending.rows = []

    # -- events ------------------------------------------------------------------------

    def _encoded(self, changes: list[RecordChange]) -> tuple[list[Event], list[bytes]]:
        """The changes' events (of registered collections), keyed, and encoded."""
        events: list[Event] = []
        payloads: list[bytes] = []
        for change in changes:
            model = change.model
            if not issubclass(model, BaseModel):
                continue
            name = model.collection_name()
            if collection(name) is not model:
                continue  # not a registered collection
            key = f"{self._key_prefix}{next(self._keys)}"
            event = record_event(change, name, model.left_out_of_events(), key)
            if event is None:
                continue
            try:
                payloads.append(self._codec.encode(event))
                events.append(event)
            except (TypeError, ValueError) as error:
                # The change commits whatever its event holds; its event alone is lost.
                self.unencodable += 1
                log.error(
                    "realtime: an event of %r cannot be published and is lost: %s", name, error
                )
        return events, payloads


def install_outboxes(
    models: Iterable[type[peewee.Model]], codec: EventCodec[Event]
) -> list[OutboxWriter]:
    """The outbox writers of the databases `models` use, installed where missing (one
    per database); databases not yet usable (a proxy not initialized) are skipped."""
    writers: list[OutboxWriter] = []
    for model in models:
        db = model._meta.database
        real = db.obj if isinstance(db, peewee.Proxy) else db
        if not isinstance(real, ChangeTracking):
            continue
        writer = OutboxWriter.for_database(real, codec)
        if all(writer is not seen for seen in writers):
            writers.append(writer)
            _ensure_now(writer.table)
    return writers


def _ensure_now(table: OutboxTable) -> None:
    """The outbox's tables made now if the database is open and idle, rather than in
    the first transaction that writes to it; else that transaction makes them."""
    database = table.database
    if database.is_closed() or database.in_transaction():  # type: ignore[attr-defined]
        return
    try:
        table.ensure()
    except peewee.DatabaseError as error:
        log.warning("realtime: cannot create the outbox's tables yet: %s", error)
