"""The databases: SQLite by default, PostgreSQL by URL, each announcing committed
record changes (`runtime.change_tracking`), and the one models use unless they name
their own.

Models bind to `database` unless they name their own: a proxy that `open_database()`
points at an SQLite file or a PostgreSQL server at start-up. A collection may instead
use any tracking database, or a `DatabaseProxy` of one; a plain Peewee database, or a
proxy never initialized, is refused with one clear line (`DatabaseUnavailable`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import peewee

from .adapters.peewee import commit_will_roll_back
from .change_tracking import ChangeTracking, ReadsBlocked, RecordChange, on_commit
from .database_url import is_database_url, postgresql_url, redacted
from .query.folding import SQLITE_FUNCTION, fold

__all__ = [
    "AUTOCHECKPOINT_PAGES",
    "ChangeTracking",
    "DatabaseUnavailable",
    "ReadsBlocked",
    "RecordChange",
    "TrackingDatabase",
    "TrackingPostgresqlDatabase",
    "TrackingSqliteDatabase",
    "bound_to",
    "database",
    "on_commit",
    "open_database",
    "postgresql_error",
    "require_databases",
    "thread_connections_closed",
    "tracking_database",
    "tracking_of",
]


class DatabaseUnavailable(Exception):
    """A database cannot be used: not opened, not tracking changes, or not reachable.

    Its message is one line that says which database and what to do.
    """


class TrackingSqliteDatabase(ChangeTracking, peewee.SqliteDatabase):
    """SQLite (3.35 or newer, for RETURNING) that announces committed changes.

    Transactions begin IMMEDIATE, taking the write lock at BEGIN: a transaction that
    reads and then writes would otherwise fail at once with "database is locked" when
    another connection (a thread, a process, the outbox's relay) wrote in between, as
    its snapshot could not become a writer's; IMMEDIATE waits for the lock instead
    (`busy_timeout`). Only reads under held commits begin DEFERRED (they never wait).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) < 5:  # lock_type is the fifth positional parameter
            kwargs.setdefault("lock_type", "IMMEDIATE")
        super().__init__(*args, **kwargs)
        # The case folding of filters' `~`, the same as Python's and PostgreSQL's.
        self.register_function(fold, SQLITE_FUNCTION, 1, deterministic=True)
        # Threads whose connections leave WAL checkpoints to a Checkpointer
        # (runtime/sqlite_checkpoints.py): the serving thread, while it serves.
        self._quiet_threads: set[int] = set()

    def quiet_checkpoints(self, quiet: bool) -> None:
        """Whether the calling thread's connections (its open one at once, and those it
        opens later) leave checkpoints to a Checkpointer."""
        if quiet:
            self._quiet_threads.add(threading.get_ident())
        else:
            self._quiet_threads.discard(threading.get_ident())
        if not self.is_closed():
            self._set_autocheckpoint(self.connection(), quiet)

    def _initialize_connection(self, conn: Any) -> None:
        super()._initialize_connection(conn)
        if threading.get_ident() in self._quiet_threads:
            self._set_autocheckpoint(conn, quiet=True)

    @staticmethod
    def _set_autocheckpoint(conn: Any, quiet: bool) -> None:
        pages = 0 if quiet else AUTOCHECKPOINT_PAGES
        conn.execute(f"PRAGMA wal_autocheckpoint = {pages}")

    def reads_while_held(self) -> contextlib.AbstractContextManager[Any]:
        # WAL readers never wait. One read transaction, so that every read sees the
        # same moment (the outbox's newest id with the records); DEFERRED: it writes
        # nothing, and must not wait for a writer that waits for the commit lock.
        atomic: contextlib.AbstractContextManager[Any] = self.atomic("DEFERRED")
        return atomic


# How long a snapshot read under held commits waits for a table lock before giving up.
READS_WHILE_HELD_LOCK_TIMEOUT_MS = 1000


class TrackingPostgresqlDatabase(ChangeTracking, peewee.PostgresqlDatabase):
    """PostgreSQL that announces committed changes (psycopg 3 preferred, see pyproject)."""

    def init(self, database: Any, **kwargs: Any) -> None:
        # psycopg 3 reads BYTEA as bytes, as SQLite does (psycopg2: memoryview), so rules
        # see the same types on either database.
        kwargs.setdefault("prefer_psycopg3", True)
        super().init(database, **kwargs)

    @contextlib.contextmanager
    def reads_while_held(self) -> Iterator[None]:
        # A SELECT waits for a table lock (LOCK TABLE, TRUNCATE, ALTER TABLE) whose
        # transaction may be waiting for the commit lock held around these reads.
        try:
            with self.atomic():
                # One snapshot for every read (the outbox's newest id with the records).
                self.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                self.execute_sql(f"SET LOCAL lock_timeout = {READS_WHILE_HELD_LOCK_TIMEOUT_MS}")
                yield
        except peewee.OperationalError as error:
            if _sqlstate(error) == "55P03":  # lock_not_available
                raise ReadsBlocked(str(error).strip()) from error
            raise

    def _commit_is_rollback(self) -> bool:
        # After an error the transaction is aborted, and PostgreSQL answers COMMIT by
        # rolling back without an error: its changes must not be announced.
        return commit_will_roll_back(self)


def postgresql_error(error: peewee.DatabaseError) -> tuple[str, Any] | None:
    """(SQLSTATE, diagnostics) of the PostgreSQL driver's error that Peewee's error
    stands for (psycopg 3's `sqlstate`, psycopg2's `pgcode`); None on SQLite."""
    for driver_error in (error.__cause__, error.__context__, *error.args):
        code = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", None)
        if isinstance(code, str):
            return code, getattr(driver_error, "diag", None)
    return None


def _sqlstate(error: peewee.DatabaseError) -> str | None:
    found = postgresql_error(error)
    return found[0] if found is not None else None


# The name of the SQLite class before PostgreSQL came.
TrackingDatabase = TrackingSqliteDatabase

# SQLite's default `wal_autocheckpoint`, for connections that checkpoint: those of any
# thread but a serving one (runtime/sqlite_checkpoints.py).
AUTOCHECKPOINT_PAGES = 1000

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


@contextlib.contextmanager
def thread_connections_closed() -> Iterator[None]:
    """Close, at the end of the block, the connections this thread opened inside it.

    Peewee keeps a connection per thread. A worker thread of the event loop's pool (a
    sync client-event handler) would otherwise hold its own for good: on PostgreSQL, one
    server connection per idle pool thread, never closed at shutdown."""
    open_before = {id(db) for db in ChangeTracking.instances if not db.is_closed()}  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for db in list(ChangeTracking.instances):
            opened_here = id(db) not in open_before and not db.is_closed()  # type: ignore[attr-defined]
            if opened_here and not db.in_transaction():  # type: ignore[attr-defined]
                db.close()  # type: ignore[attr-defined]
