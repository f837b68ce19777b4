"""Record changes announced only once they commit: the buffers behind every tracking
database (the capture stage of the event pipeline).

Models record their changes with `record_change()` on their database. Changes made
inside a transaction wait in a buffer per transaction and savepoint: a savepoint that is
released hands its changes to the enclosing level, one rolled back drops them, and the
outermost commit hands them, in order, to every receiver connected with
`on_commit.connect()`. Outside a transaction a change is committed at once and announced
at once.

`ChangeTracking` does this for any Peewee database it is mixed into (`runtime.db` has
the SQLite and PostgreSQL ones). Savepoints are followed by the statements that open,
release and roll them back, whoever issues them (Peewee's `atomic()` on the database or
on a `DatabaseProxy` of it, or raw SQL), so that the buffers match what the database
keeps.

Peewee keeps connection and transaction state per thread, so the buffers are per thread
too. One lock spans "commit, then announce": receivers are called under it, so the order
in which they hear of changes is the order in which the changes committed, whatever
thread committed them. A receiver must therefore be quick and must never wait for
another thread (realtime only queues the changes). The same lock lets a reader take a
snapshot that no commit of this process can slip into (`commits_held()`). The changes of
a transaction are all known, in order, inside `commit()` before the COMMIT: there a
database's `outbox` (runtime/realtime/capture/outbox.py), if it has one, writes them in
the same transaction, and hears afterwards whether they committed.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import peewee

__all__ = [
    "ChangeTracking",
    "CommitSignal",
    "Outbox",
    "ReadsBlocked",
    "RecordChange",
    "on_commit",
]

log = logging.getLogger("runtime.db")  # the name it had when this lived in runtime.db


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One committed create, update or delete of one record."""

    model: type[peewee.Model]
    action: str  # "create" | "update" | "delete"
    record_id: str
    data: dict[str, Any]  # every field's stored value at that moment (hidden ones included)
    changed: tuple[str, ...] = ()  # for "update": the fields that were written
    # For "update": the written fields' values just before it (read in its transaction),
    # by which a subscriber's view is judged as it was; None where that is not known.
    previous: dict[str, Any] | None = None


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


# One signal for every tracking database: one stream of changes, in commit order.
on_commit = CommitSignal()


# SAVEPOINT x, RELEASE [SAVEPOINT] x, ROLLBACK [TRANSACTION|WORK] TO [SAVEPOINT] x: the
# same words in SQLite and PostgreSQL. Peewee quotes the name; raw SQL may not.
_SAVEPOINT_SQL = re.compile(
    r"\s*(?:(SAVEPOINT)|(RELEASE)(?:\s+SAVEPOINT)?|(ROLLBACK)(?:\s+(?:TRANSACTION|WORK))?"
    r"\s+TO(?:\s+SAVEPOINT)?)\s+(\"(?:[^\"]|\"\")+\"|\w+)\s*;?\s*\Z",
    re.IGNORECASE,
)


def _savepoint_name(token: str) -> str:
    if token.startswith('"'):
        return token[1:-1].replace('""', '"')
    return token.lower()  # unquoted names fold, as the databases fold them


@dataclass(slots=True)
class _Level:
    """The changes of the transaction (savepoint None) or of one open savepoint."""

    savepoint: str | None
    changes: list[RecordChange] = field(default_factory=list)


class Outbox(Protocol):
    """Writes a transaction's changes into the database, in that transaction (under the
    commit lock, on the committing thread), and hears how the commit went."""

    def write(self, database: ChangeTracking, changes: list[RecordChange]) -> None: ...

    def committed(self, database: ChangeTracking) -> None: ...

    def discarded(self, database: ChangeTracking) -> None: ...


class ReadsBlocked(Exception):
    """Reads made while commits are held met a lock that another transaction holds."""


class ChangeTracking:
    """Commit-aware change buffers for a Peewee database (see the module docstring).

    Mix it in before the Peewee class: `class X(ChangeTracking, peewee.SqliteDatabase)`.
    """

    # One lock for every tracking database of the process: receivers hear of all commits
    # in one order, and a snapshot of models on several databases holds them all.
    _commit_lock: ClassVar[threading.RLock] = threading.RLock()

    # Every tracking database of the process (runtime.db.thread_connections_closed()).
    instances: ClassVar[weakref.WeakSet[ChangeTracking]] = weakref.WeakSet()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        ChangeTracking.instances.add(self)
        self._buffers = threading.local()
        # Where committed changes are written in their own transaction (realtime's
        # transactional outbox), once realtime is set up for this database.
        self.outbox: Outbox | None = None
        super().__init__(*args, **kwargs)

    def _levels(self) -> list[_Level]:
        levels: list[_Level] | None = getattr(self._buffers, "levels", None)
        if levels is None:
            levels = self._buffers.levels = []
        return levels

    # -- what models call ------------------------------------------------------------

    def record_change(self, change: RecordChange) -> None:
        levels = self._levels()
        if levels:
            levels[-1].changes.append(change)
        else:  # committed already (autocommit): its outbox row cannot share its commit
            with self._commit_lock:
                with self._outbox_around([change]):
                    pass
                on_commit.send([change])

    def write_transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A transaction around one write made outside any, else nothing.

        A write in autocommit mode would commit before its change could be announced,
        and another thread's commit could be announced in between: inside a
        transaction, its commit and its announcement are one step under the lock.
        """
        if self._levels() or self.in_transaction():  # type: ignore[attr-defined]
            return contextlib.nullcontext()
        atomic: contextlib.AbstractContextManager[Any] = self.atomic()  # type: ignore[attr-defined]
        return atomic

    def commits_held(self) -> contextlib.AbstractContextManager[Any]:
        """No commit of this process completes (nor is announced) while this is held.

        What is read under it is exactly what the changes announced so far made.
        """
        return self._commit_lock

    def reads_while_held(self) -> contextlib.AbstractContextManager[Any]:
        """Around reads made under `commits_held()`: they must not wait for a lock held by
        a transaction that, to commit, waits for the commit lock (a deadlock). Where the
        database's reads can wait on locks, they give up instead, with ReadsBlocked."""
        return contextlib.nullcontext()  # (SQLite and PostgreSQL say their own, in runtime.db)

    # -- transactions ----------------------------------------------------------------

    def begin(self, *args: Any, **kwargs: Any) -> None:
        super().begin(*args, **kwargs)  # type: ignore[misc]
        levels = self._levels()
        levels.clear()  # leftovers of a connection that died mid-transaction
        levels.append(_Level(None))

    def commit(self) -> None:
        with self._commit_lock:
            levels = self._levels()
            changes = [change for level in levels for change in level.changes]
            if not changes or self._commit_is_rollback():
                super().commit()  # type: ignore[misc]
                levels.clear()
                return
            with self._outbox_around(changes):
                super().commit()  # type: ignore[misc]
            levels.clear()
            on_commit.send(changes)

    @contextlib.contextmanager
    def _outbox_around(self, changes: list[RecordChange]) -> Any:
        """The outbox writes `changes` before the commit inside, and hears whether it
        went through."""
        outbox = self.outbox
        if outbox is None:
            yield
            return
        outbox.write(self, changes)
        try:
            yield
        except BaseException:
            outbox.discarded(self)
            raise
        outbox.committed(self)

    def rollback(self) -> None:
        try:
            super().rollback()  # type: ignore[misc]
        finally:
            self._levels().clear()

    def _commit_is_rollback(self) -> bool:
        """Whether COMMIT will in fact roll back (a transaction an error aborted)."""
        return False

    # -- savepoints, followed by their statements --------------------------------------

    def execute_sql(self, sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        match = _SAVEPOINT_SQL.match(sql) if isinstance(sql, str) else None
        if match is None:
            return super().execute_sql(sql, params, *args, **kwargs)  # type: ignore[misc]
        opening, releasing, _ = match.group(1, 2, 3)
        name = _savepoint_name(match.group(4))
        levels = self._levels()
        if releasing and self._find(levels, name) == 0:
            # A savepoint opened outside any transaction (SQLite) commits when released:
            # commit and announcement are one step under the lock, as in commit().
            with self._commit_lock:
                changes = [change for level in levels for change in level.changes]
                with self._outbox_around(changes) if changes else contextlib.nullcontext():
                    cursor = super().execute_sql(sql, params, *args, **kwargs)  # type: ignore[misc]
                self._release(levels, name)
            return cursor
        cursor = super().execute_sql(sql, params, *args, **kwargs)  # type: ignore[misc]
        if opening:
            levels.append(_Level(name))
        elif releasing:
            self._release(levels, name)
        else:
            self._roll_back_to(levels, name)
        return cursor

    @staticmethod
    def _find(levels: list[_Level], name: str) -> int | None:
        """The newest open savepoint of that name, as the databases resolve it."""
        for index in range(len(levels) - 1, -1, -1):
            if levels[index].savepoint == name:
                return index
        return None

    def _release(self, levels: list[_Level], name: str) -> None:
        # RELEASE ends that savepoint and every one opened after it, keeping their changes.
        index = self._find(levels, name)
        if index is None:
            return
        released = [change for level in levels[index:] for change in level.changes]
        del levels[index:]
        if levels:
            levels[-1].changes.extend(released)
        elif released:  # it was the outermost: that was a commit
            on_commit.send(released)

    def _roll_back_to(self, levels: list[_Level], name: str) -> None:
        # ROLLBACK TO undoes everything since that savepoint, which stays open.
        index = self._find(levels, name)
        if index is not None:
            del levels[index + 1 :]
            levels[index].changes.clear()
