"""`python -m runtime migrate`: bring the tables to the models.

Built on Peewee's `playhouse.migrate`. Each database is migrated in one transaction:
all of its changes or none. Prints one line per change made, or with `dry_run` the
SQL each would run (run, then rolled back). Destructive changes (dropping a column or
an index, retyping a column, making one NOT NULL) are made only with `destructive`;
else each is listed as skipped. Tables are never dropped.

Exit status: 0 when the database matches the models afterwards (or would, for a dry
run); 1 when a change was skipped or refused, or failed (then nothing was changed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import peewee

from .change import Change, Safety
from .migration import by_database, migration, recorded_statements

__all__ = ["MATCHES", "migrate_models"]

MATCHES = "the database matches the models"
SKIPPED = "skipped (destructive; pass --destructive)"


class _DryRun(Exception):
    """Raised at the end of a dry run, to roll its transaction back."""


class _Failed(Exception):
    def __init__(self, change: Change, error: peewee.DatabaseError) -> None:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        super().__init__(f"{change.subject}: {change.todo} failed: {reason}")


def migrate_models(
    models: Iterable[type[peewee.Model]],
    *,
    dry_run: bool = False,
    destructive: bool = False,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> int:
    """Migrate every database of `models`; the exit status (see the module)."""
    status, changed = 0, False
    for db, group in by_database(models):
        lines: list[str] = []  # said once committed (or rolled back, for a dry run)
        try:
            with migration(db, group) as changes:
                changed = changed or bool(changes)
                status |= _make(changes, dry_run=dry_run, destructive=destructive, say=lines.append)
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
        except _Failed as failure:
            warn(f"error: {failure}; the database was left as it was")
            return 1
        for line in lines:
            say(line)
    if not changed:
        say(MATCHES)
    elif dry_run:
        say("-- dry run: nothing was changed")
    return status


def _make(
    changes: list[Change], *, dry_run: bool, destructive: bool, say: Callable[[str], None]
) -> int:
    status = 0
    for change in changes:
        if change.safety is Safety.REFUSED or change.make is None:
            say(f"{change.subject}: refused: {change.problem}: {change.advice}")
            status = 1
            continue
        if change.safety is Safety.DESTRUCTIVE and not destructive:
            say(f"{change.subject}: {change.todo}: {SKIPPED}")
            status = 1
            continue
        try:
            with recorded_statements() as statements:
                change.make()
        except peewee.DatabaseError as error:
            raise _Failed(change, error) from error
        if dry_run:
            say(f"-- {change.subject}: {change.todo}")
            for statement in statements:
                say(statement)
        else:
            say(f"{change.subject}: {change.done}")
    return status
