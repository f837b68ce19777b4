"""At start-up: the tables follow the models, or the app does not start.

`create_app()` compares each served model with its table. What only adds (a table, a
column that is nullable or has a default, an index, a unique one if no rows share a
value) it makes; what would lose or invent data it leaves to `python -m runtime
migrate`, and refuses to start with `SchemaMismatch`: one line per difference, naming
the model, the column and the command to run. A difference that does not stop serving
(a column the model no longer has, nullable or with a default) is said once at WARNING.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterable, Iterator

import peewee

from .change import Change, Safety
from .migration import by_database, migration, read

__all__ = ["MIGRATE", "SchemaMismatch", "check_schema", "schema_check_deferred"]

log = logging.getLogger("runtime")

MIGRATE = "python -m runtime migrate"

# Set while `python -m runtime migrate` builds the app it migrates: its create_app()
# leaves the tables to the command.
_deferred: contextvars.ContextVar[bool] = contextvars.ContextVar("schema_deferred", default=False)


@contextlib.contextmanager
def schema_check_deferred() -> Iterator[None]:
    """create_app() inside the block neither changes the tables nor refuses to start."""
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)


class SchemaMismatch(Exception):
    """The tables differ from the models in ways start-up does not change: one line per
    difference (`lines()`), naming the model, the column and the command to run."""

    def __init__(self, changes: list[Change], *, auto_migrate: bool = True) -> None:
        self.changes = changes
        self.auto_migrate = auto_migrate
        super().__init__("\n".join(self.lines()))

    def lines(self, command: str = MIGRATE) -> list[str]:
        """Each difference as one line; `command` is how to run migrate (the command
        line adds its --app and --config)."""
        return [self._line(change, command) for change in self.changes]

    def _line(self, change: Change, command: str) -> str:
        problem = change.problem
        if change.safety is Safety.AUTOMATIC:  # only when auto_migrate is false
            problem += " (database.auto_migrate is false)"
        if change.safety is Safety.REFUSED:
            return f"{change.subject}: {problem}: {change.advice}"
        if change.safety is Safety.DESTRUCTIVE:
            command = command.replace(MIGRATE, f"{MIGRATE} --destructive", 1)
        return f"{change.subject}: {problem}: {change.advice}run: {command}"


def check_schema(models: Iterable[type[peewee.Model]], *, auto_migrate: bool = True) -> None:
    """Make what start-up makes, warn about what does not matter yet, or raise
    `SchemaMismatch` (then nothing was changed, on any database)."""
    if _deferred.get():
        return
    groups = by_database(models)
    found = [(db, group, read(db, group)) for db, group in groups]
    refused = [c for _, _, changes in found for c in changes if _refuses(c, auto_migrate)]
    if refused:
        raise SchemaMismatch(refused, auto_migrate=auto_migrate)
    for db, group, changes in found:
        if any(c.safety is Safety.AUTOMATIC for c in changes):
            _make_automatic(db, group, auto_migrate)
        for change in changes:
            if change.safety is Safety.DESTRUCTIVE:
                log.warning(
                    "%s: %s (left as it is; %s --destructive changes it)",
                    change.subject,
                    change.problem,
                    MIGRATE,
                )


def _refuses(change: Change, auto_migrate: bool) -> bool:
    if not auto_migrate:
        return True
    if change.safety is Safety.DESTRUCTIVE:
        return change.breaks_serving
    return change.safety is not Safety.AUTOMATIC


def _make_automatic(db: peewee.Database, group: list[type[peewee.Model]], auto: bool) -> None:
    """Make the additions, read again under the lock (another process starting at the
    same moment may have made them, or more)."""
    with migration(db, group) as changes:
        refused = [c for c in changes if _refuses(c, auto)]
        if refused:
            raise SchemaMismatch(refused, auto_migrate=auto)
        for change in changes:
            if change.safety is Safety.AUTOMATIC and change.make is not None:
                change.make()
                log.info("%s: %s", change.subject, change.done)
