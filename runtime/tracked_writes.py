"""Write queries that announce their changes: one per row they wrote, each the row as
the database stored it (see runtime/change_tracking.py).

`BaseModel`'s bulk writes (`update()`, `insert()`, `insert_many()`, `insert_from()`,
`delete()`) are these queries; its `save()` and `delete_instance()` run them too, and
take the rows their statement wrote to announce their own change, with the fields it
changed. Running a query with RETURNING every column is Peewee's insides, kept in
runtime/adapters/peewee.py.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import peewee

from .adapters.peewee import (
    ReturningDelete,
    ReturningInsert,
    ReturningUpdate,
    ReturningWrite,
    Rows,
    Write,
)
from .db import ChangeTracking, RecordChange, tracking_of

__all__ = [
    "TrackedDelete",
    "TrackedInsert",
    "TrackedUpdate",
    "TrackedWrite",
    "Written",
    "rows_returned_to_caller",
    "tracking",
]


def tracking(model: type[peewee.Model]) -> ChangeTracking:
    """The tracking database `model` writes to (DatabaseUnavailable if it is none)."""
    return tracking_of(model._meta.database, model.__name__)


_local = threading.local()


class Written:
    """What the statement of a save() or delete_instance() wrote: its rows (as the
    database stored them) and, for an update, the written fields' values before it.
    Filled by that statement, the first write of `model` while it is being collected."""

    __slots__ = ("before", "filled", "model", "rows")

    def __init__(self, model: type[peewee.Model]) -> None:
        self.model = model
        self.rows: Rows = []
        self.before: dict[Any, dict[str, Any]] | None = None
        self.filled = False

    def previous(self, row: dict[str, Any]) -> dict[str, Any] | None:
        return _previous(self.before, row.get(self.model._meta.primary_key.name))


def _previous(before: dict[Any, dict[str, Any]] | None, key: Any) -> dict[str, Any] | None:
    return before.get(key) if before is not None else None


@contextlib.contextmanager
def rows_returned_to_caller(model: type[peewee.Model]) -> Iterator[Written]:
    """save() and delete_instance() announce their own change (with its changed fields):
    what their statement wrote is handed to them instead of announced."""
    previous = getattr(_local, "collector", None)
    written = _local.collector = Written(model)
    try:
        yield written
    finally:
        _local.collector = previous


class TrackedWrite(ReturningWrite):
    """A write query that announces one change per row it wrote.

    It writes in a transaction of its own when outside one, so that its commit and its
    announcement are one step (see runtime.db), and records each row it wrote as that
    record's change (`ReturningWrite` runs it with RETURNING every column). Queries with
    a `.returning()` of their own announce nothing: their rows are not whole records.
    """

    action: ClassVar[str]

    def _written(self, database: Any, write: Write) -> Rows:
        model = self.model
        tracking = tracking_of(database, model.__name__)
        pk = model._meta.primary_key.name
        collector: Written | None = getattr(_local, "collector", None)
        with tracking.write_transaction():
            changed = self._changed_fields()
            # Read first, in the same transaction: who saw the record before the change
            # is judged on these (a record leaving a subscriber's filter or rule).
            before = self._before(database, changed)
            rows = write(self._only_rows_before(database, before))
            if collector is not None and collector.model is model and not collector.filled:
                # the statement of a save() or delete_instance()
                collector.rows, collector.before, collector.filled = rows, before, True
            else:
                for row in rows:
                    key = row.get(pk)
                    previous = _previous(before, key)
                    tracking.record_change(
                        RecordChange(model, self.action, str(key), row, changed, previous)
                    )
        return rows

    def _before(self, database: Any, changed: tuple[str, ...]) -> dict[Any, dict[str, Any]] | None:
        return None  # an update's own (see TrackedUpdate)


class TrackedUpdate(TrackedWrite, ReturningUpdate):
    action = "update"

    def _before(self, database: Any, changed: tuple[str, ...]) -> dict[Any, dict[str, Any]] | None:
        return self._rows_before(database, changed) if changed else None


class TrackedDelete(TrackedWrite, ReturningDelete):
    action = "delete"


class TrackedInsert(TrackedWrite, ReturningInsert):
    action = "create"
