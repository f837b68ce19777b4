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
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import peewee

from .adapters.peewee import (
    ReturningDelete,
    ReturningInsert,
    ReturningUpdate,
    ReturningWrite,
    Rows,
)
from .db import ChangeTracking, RecordChange, tracking_of

__all__ = [
    "TrackedDelete",
    "TrackedInsert",
    "TrackedUpdate",
    "TrackedWrite",
    "rows_returned_to_caller",
    "tracking",
]


def tracking(model: type[peewee.Model]) -> ChangeTracking:
    """The tracking database `model` writes to (DatabaseUnavailable if it is none)."""
    return tracking_of(model._meta.database, model.__name__)


_local = threading.local()


class _Collector:
    __slots__ = ("model", "rows")

    def __init__(self, model: type[peewee.Model]) -> None:
        self.model = model
        self.rows: Rows | None = None


@contextlib.contextmanager
def rows_returned_to_caller(model: type[peewee.Model]) -> Iterator[Rows]:
    """save() and delete_instance() announce their own change (with its changed fields):
    the rows their statement returns are handed to them instead of announced."""
    written: Rows = []
    previous = getattr(_local, "collector", None)
    collector = _local.collector = _Collector(model)
    try:
        yield written
    finally:
        _local.collector = previous
        written.extend(collector.rows or ())


class TrackedWrite(ReturningWrite):
    """A write query that announces one change per row it wrote.

    It writes in a transaction of its own when outside one, so that its commit and its
    announcement are one step (see runtime.db), and records each row it wrote as that
    record's change (`ReturningWrite` runs it with RETURNING every column). Queries with
    a `.returning()` of their own announce nothing: their rows are not whole records.
    """

    action: ClassVar[str]

    def _written(self, database: Any, write: Callable[[], Rows]) -> Rows:
        model = self.model
        tracking = tracking_of(database, model.__name__)
        pk = model._meta.primary_key.name
        collector: _Collector | None = getattr(_local, "collector", None)
        with tracking.write_transaction():
            rows = write()
            if collector is not None and collector.model is model and collector.rows is None:
                collector.rows = rows  # the statement of a save() or delete_instance()
            else:
                changed = self._changed_fields()
                for row in rows:
                    change = RecordChange(model, self.action, str(row.get(pk)), row, changed)
                    tracking.record_change(change)
        return rows


class TrackedUpdate(TrackedWrite, ReturningUpdate):
    action = "update"


class TrackedDelete(TrackedWrite, ReturningDelete):
    action = "delete"


class TrackedInsert(TrackedWrite, ReturningInsert):
    action = "create"
