"""Databases whose record changes are announced only once they commit.

Models record their changes with `record_change()` on their database. Changes made
inside a transaction wait in a buffer per transaction and savepoint: a savepoint that is
released hands its changes to the enclosing level, one rolled back drops them, and the
outermost commit hands them, in order, to every receiver connected with
`on_commit.connect()`. Outside a transaction a change is committed at once and announced
at once.

`ChangeTracking` does this for any Peewee database it is mixed into:
`TrackingSqliteDatabase` and `TrackingPostgresqlDatabase`. Savepoints are followed by
the statements that open, release and roll them back, whoever issues them (Peewee's
`atomic()` on the database or on a `DatabaseProxy` of it, or raw SQL), so that the
buffers match what the database keeps.

Peewee keeps connection and transaction state per thread, so the buffers are per thread
too. One lock spans "commit, then announce": receivers are called under it, so the order
in which they hear of changes is the order in which the changes committed, whatever
thread committed them. A receiver must therefore be quick and must never wait for
another thread (realtime only queues the changes). The same lock lets a reader take a
snapshot that no commit of this process can slip into (`commits_held()`).

Models bind to `database` unless they name their own: a proxy that `open_database()`
points at an SQLite file or a PostgreSQL server at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import peewee

from .database_url import is_database_url, postgresql_url, redacted

__all__ = [
    "ChangeTracking",
    "DatabaseUnavailable",
    "RecordChange",
    "TrackingDatabase",
    "TrackingPostgresqlDatabase",
    "TrackingSqliteDatabase",
    "bound_to",
    "database",
    "on_commit",
    "open_database",
    "require_databases",
    "tracking_database",
    "tracking_of",
]

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


# One signal for every tracking database: one stream of changes, in commit order.
on_commit = CommitSignal()


class DatabaseUnavailable(Exception):
    """A database cannot be used: not opened, not tracking changes, or not reachable.

    Its message is one line that says which database and what to do.
    """


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


class ChangeTracking:
    """Commit-aware change buffers for a Peewee database (see the module docstring).

    Mix it in before the Peewee class: `class X(ChangeTracking, peewee.SqliteDatabase)`.
    """

    # One lock for every tracking database of the process: receivers hear of all commits
    # in one order, and a snapshot of models on several databases holds them all.
    _commit_lock: ClassVar[threading.RLock] = threading.RLock()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._buffers = threading.local()
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
        else:
            with self._commit_lock:
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

    # -- transactions ----------------------------------------------------------------

    def begin(self, *args: Any, **kwargs: Any) -> None:
        super().begin(*args, **kwargs)  # type: ignore[misc]
        levels = self._levels()
        levels.clear()  # leftovers of a connection that died mid-transaction
        levels.append(_Level(None))

    def commit(self) -> None:
        with self._commit_lock:
            discarded = self._commit_is_rollback()
            super().commit()  # type: ignore[misc]
            levels = self._levels()
            changes = [change for level in levels for change in level.changes]
            levels.clear()
            if changes and not discarded:
                on_commit.send(changes)

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


class TrackingSqliteDatabase(ChangeTracking, peewee.SqliteDatabase):
    """SQLite (3.35 or newer, for RETURNING) that announces committed changes."""


class TrackingPostgresqlDatabase(ChangeTracking, peewee.PostgresqlDatabase):
    """PostgreSQL that announces committed changes (psycopg 3 preferred, see pyproject)."""

    def init(self, database: Any, **kwargs: Any) -> None:
        # psycopg 3 reads BYTEA as bytes, as SQLite does (psycopg2: memoryview), so rules
        # see the same types on either database.
        kwargs.setdefault("prefer_psycopg3", True)
        super().init(database, **kwargs)

    def _commit_is_rollback(self) -> bool:
        # After an error the transaction is aborted, and PostgreSQL answers COMMIT by
        # rolling back without an error: its changes must not be announced.
        conn = self._state.conn
        adapter = self._adapter
        return conn is not None and bool(adapter.txn_status(conn) == adapter.txn_inerror)


# The name of the SQLite class before PostgreSQL came.
TrackingDatabase = TrackingSqliteDatabase

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 5000,
    "synchronous": "normal",
}

_NOT_OPEN = (
    "no database is open: call runtime.db.open_database(path or postgresql:// URL) "
    "first (create_app() does)"
)


class _DefaultDatabase(peewee.DatabaseProxy):
    """`database`: a proxy that says what to do when it is used before it is opened."""

    def __getattr__(self, attr: str) -> Any:
        if self.obj is None:
            raise AttributeError(f"runtime.db.database: {_NOT_OPEN}")
        return getattr(self.obj, attr)


# Models bind to this proxy unless they name a database of their own; `open_database()`
# points it at a tracking database at start-up.
database: peewee.DatabaseProxy = _DefaultDatabase()


def tracking_database(target: str) -> ChangeTracking:
    """A tracking database, not yet connected, for `target`: an SQLite file path
    (its folder is created; ':memory:' too) or a `postgresql://` URL."""
    if is_database_url(target):
        try:
            url = postgresql_url(target)
        except ValueError as exc:
            raise DatabaseUnavailable(str(exc)) from None
        return TrackingPostgresqlDatabase(url)
    if target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    return TrackingSqliteDatabase(target, pragmas=SQLITE_PRAGMAS)


def open_database(target: str) -> ChangeTracking:
    """Point `database` at `target` (see `tracking_database`) and connect, or raise
    `DatabaseUnavailable` with one line that says why not."""
    previous = database.obj
    if previous is not None and not previous.is_closed():
        previous.close()
    opened = tracking_database(target)
    database.initialize(opened)
    _connect(opened, f"database {redacted(target)!r}", keep=True)
    return opened


def bound_to(model: type[peewee.Model], db: Any) -> bool:
    """Whether `model` uses `db` (either of them may be a proxy)."""
    mine = model._meta.database
    if mine is db:
        return True
    real = db.obj if isinstance(db, peewee.Proxy) else db
    return real is not None and real is (mine.obj if isinstance(mine, peewee.Proxy) else mine)


def tracking_of(db: Any, what: str) -> ChangeTracking:
    """The tracking database `db` is or points at (a proxy), else `DatabaseUnavailable`
    with one line, about `what`, that says what to do."""
    real = db.obj if isinstance(db, peewee.Proxy) else db
    if isinstance(real, ChangeTracking):
        return real
    if real is None and db is database:
        raise DatabaseUnavailable(f"{what}: {_NOT_OPEN}")
    if real is None:
        raise DatabaseUnavailable(
            f"{what}: its DatabaseProxy was never initialized: call proxy.initialize("
            "TrackingSqliteDatabase(…) or TrackingPostgresqlDatabase(…)) first"
        )
    raise DatabaseUnavailable(
        f"{what}: a {type(real).__name__} announces no changes: use "
        "runtime.db.TrackingSqliteDatabase or TrackingPostgresqlDatabase"
    )


def require_databases(
    models: Iterable[type[peewee.Model]], given: Any = None, *, who: str = "realtime"
) -> None:
    """Each database of `models` (or `given`) tracks changes, was given its name and
    connects; else `DatabaseUnavailable` names the first that does not, for `who`."""
    checked: list[ChangeTracking] = []
    for db, what in _databases(models, given, who):
        real = tracking_of(db, what)
        if any(real is seen for seen in checked):
            continue
        checked.append(real)
        if real.deferred:  # type: ignore[attr-defined]
            raise DatabaseUnavailable(f"{what}: the database was never given a name (init())")
        _connect(real, what, keep=False)


def _databases(
    models: Iterable[type[peewee.Model]], given: Any, who: str
) -> Iterable[tuple[Any, str]]:
    if given is not None:
        yield given, f"{who}: the database given"
        return
    for model in models:
        yield model._meta.database, f"{who}: collection {model._meta.table_name!r}"


def _connect(db: Any, what: str, *, keep: bool) -> None:
    """Connect on this thread (a connection opened only to try it is closed again)."""
    opened_here = db.is_closed()
    try:
        db.connect(reuse_if_open=True)
    except peewee.ImproperlyConfigured:
        raise DatabaseUnavailable(
            f"{what}: PostgreSQL needs the psycopg driver: pip install 'runtime[postgresql]'"
        ) from None
    except peewee.DatabaseError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(f"{what}: cannot connect: {reason}") from None
    if opened_here and not keep:
        db.close()
