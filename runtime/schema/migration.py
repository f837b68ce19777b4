"""Making changes: one transaction per database, the statements each change ran.

Every migration of a database, at start-up or by `python -m runtime migrate`, reads
the tables and makes its changes in one transaction that holds the database's write
lock (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an advisory lock), so that processes that
start together migrate one after the other, each seeing what the one before did; and
a change that fails undoes them all. SQLite and PostgreSQL both roll DDL back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import peewee
from playhouse.migrate import SchemaMigrator

from ..db import tracking_of
from .change import Change
from .differences import differences

__all__ = ["by_database", "migration", "read", "recorded_statements"]

# pg_advisory_xact_lock's key for migrations: "schema" in ASCII.
SCHEMA_LOCK = 0x736368656D61


def by_database(
    models: Iterable[type[peewee.Model]],
) -> list[tuple[peewee.Database, list[type[peewee.Model]]]]:
    """The models grouped by the database they use (a proxy is what it points at)."""
    groups: list[tuple[peewee.Database, list[type[peewee.Model]]]] = []
    for model in models:
        db = model._meta.database
        real = db.obj if isinstance(db, peewee.Proxy) else db
        if real is None:  # never initialized: says what to do
            tracking_of(db, f"collection {model._meta.table_name!r}")
        for known, group in groups:
            if known is real:
                group.append(model)
                break
        else:
            groups.append((real, [model]))
    return groups


def migrator_of(db: peewee.Database) -> SchemaMigrator:
    return SchemaMigrator.from_database(db)


def read(db: peewee.Database, models: list[type[peewee.Model]]) -> list[Change]:
    """The differences, read without a transaction (nothing is made from them)."""
    return differences(db, migrator_of(db), models)


@contextlib.contextmanager
def migration(db: peewee.Database, models: list[type[peewee.Model]]) -> Iterator[list[Change]]:
    """The differences, read inside the transaction that makes them: the block makes
    the changes it chooses; an exception rolls every one of them back."""
    migrator = migrator_of(db)
    # SQLite's migration context turns foreign keys off around the transaction, so
    # that rebuilding a table does not cascade; it must be done outside one.
    with migrator.migration_context():
        if isinstance(db, peewee.PostgresqlDatabase):
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        yield differences(db, migrator, models)


class _Statements(logging.Handler):
    """Keeps the statements Peewee logs (each one, at DEBUG, on its `peewee` logger),
    but reads of the schema (SELECT, PRAGMA): they change nothing."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message: Any = record.msg
        if not (isinstance(message, tuple) and len(message) == 2):
            return
        sql, params = message
        if str(sql).lstrip().upper().startswith(("SELECT", "PRAGMA")):
            return
        self.statements.append(f"{sql};" + (f"  -- {list(params)!r}" if params else ""))


@contextlib.contextmanager
def recorded_statements() -> Iterator[list[str]]:
    """The SQL run inside the block, for `--dry-run` (the log's own handlers do not
    see it)."""
    logger = logging.getLogger("peewee")
    level, propagate = logger.level, logger.propagate
    handler = _Statements()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield handler.statements
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
