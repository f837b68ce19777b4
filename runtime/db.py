"""The database, and record changes that are announced only once they commit.

Models record their changes with `database.record_change()`. Changes made inside a
transaction wait in a buffer per transaction and savepoint: a savepoint that is released
hands its changes to the enclosing level, one rolled back drops them, and the outermost
commit hands them, in order, to every receiver connected with `on_commit.connect()`.
Outside a transaction a change is committed at once and announced at once.

Peewee keeps connection and transaction state per thread, so the buffers are per thread
too. One lock spans "commit, then announce": receivers are called under it, so the order
in which they hear of changes is the order in which the changes committed, whatever
thread committed them. A receiver must therefore be quick and must never wait for
another thread (realtime only queues the changes). The same lock lets a reader take a
snapshot that no commit can slip into (`commits_held()`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee

__all__ = ["RecordChange", "TrackingDatabase", "database", "on_commit", "open_database"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One committed create, update or delete of one record."""

    model: type[peewee.Model]
    action: str  # "create" | "update" | "delete"
    record_id: str
    data: dict[str, Any]  # every field's stored value at that moment (hidden ones included)
    changed: tuple[str, ...] = ()  # for "update": the fields that were written


Receiver = Callable[[list[RecordChange]], None]


class CommitSignal:
    """Receivers of committed changes, in Peewee's `connect(receiver)` shape."""

    def __init__(self) -> None:
        self._receivers: list[Receiver] = []

    def connect(self, receiver: Receiver) -> Receiver:
        if receiver not in self._receivers:
            self._receivers.append(receiver)
        return receiver

    def disconnect(self, receiver: Receiver) -> None:
        if receiver in self._receivers:
            self._receivers.remove(receiver)

    def send(self, changes: list[RecordChange]) -> None:
        for receiver in list(self._receivers):
            try:
                receiver(changes)
            except Exception:
                # The data is committed whatever a receiver does; never undo the caller's save.
                log.exception("commit receiver %r failed", receiver)


on_commit = CommitSignal()


class _TrackedSavepoint(peewee._savepoint):
    def _begin(self) -> None:
        super()._begin()
        self.db._frames().append([])

    def commit(self, begin: bool = True) -> None:
        self.db.execute_sql(f"RELEASE SAVEPOINT {self.quoted_sid};")
        self.db._release_frame()
        if begin:
            self._begin()

    def rollback(self, begin: bool = True) -> None:
        self.db.execute_sql(f"ROLLBACK TO SAVEPOINT {self.quoted_sid};")
        frames = self.db._frames()
        if frames:
            frames.pop()
        if begin:
            self._begin()


class TrackingDatabase(peewee.SqliteDatabase):
    """SQLite with commit-aware change buffers (see the module docstring)."""

    _commit_lock = threading.RLock()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._buffers = threading.local()
        super().__init__(*args, **kwargs)

    def _frames(self) -> list[list[RecordChange]]:
        frames: list[list[RecordChange]] | None = getattr(self._buffers, "frames", None)
        if frames is None:
            frames = self._buffers.frames = []
        return frames

    def record_change(self, change: RecordChange) -> None:
        frames = self._frames()
        if frames:
            frames[-1].append(change)
        else:
            with self._commit_lock:
                on_commit.send([change])

    def write_transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A transaction around one write made outside any, else nothing.

        A write in autocommit mode would commit before its change could be announced,
        and another thread's commit could be announced in between: inside a
        transaction, its commit and its announcement are one step under the lock.
        """
        if self._frames() or self.in_transaction():
            return contextlib.nullcontext()
        atomic: contextlib.AbstractContextManager[Any] = self.atomic()
        return atomic

    def commits_held(self) -> contextlib.AbstractContextManager[Any]:
        """No commit of this process completes (nor is announced) while this is held.

        What is read under it is exactly what the changes announced so far made.
        """
        return self._commit_lock

    def begin(self, *args: Any, **kwargs: Any) -> None:
        super().begin(*args, **kwargs)
        frames = self._frames()
        frames.clear()  # leftovers of a connection that died mid-transaction
        frames.append([])

    def commit(self) -> None:
        with self._commit_lock:
            super().commit()
            frames = self._frames()
            changes = [change for frame in frames for change in frame]
            frames.clear()
            if changes:
                on_commit.send(changes)

    def rollback(self) -> None:
        super().rollback()
        self._frames().clear()

    def savepoint(self) -> _TrackedSavepoint:
        return _TrackedSavepoint(self)

    def _release_frame(self) -> None:
        frames = self._frames()
        if not frames:
            return
        released = frames.pop()
        if frames:
            frames[-1].extend(released)
        elif released:  # a savepoint outside a transaction commits on release
            with self._commit_lock:
                on_commit.send(released)


# Models bind to this object; `open_database()` points it at a file at start-up.
database = TrackingDatabase(None)


def open_database(path: str) -> TrackingDatabase:
    """Open (creating its folder) the SQLite file at `path`; ':memory:' is allowed."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not database.is_closed():
        database.close()
    database.init(
        path,
        pragmas={
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 5000,
            "synchronous": "normal",
        },
    )
    database.connect(reuse_if_open=True)
    return database
