"""How a table's indexes differ from its model's: missing ones (a unique one only if no
rows share a value), ones of other uniqueness, and ones the model does not have.

An index matches the model's by name, or by its columns and uniqueness; the primary
key's index and SQLite's own (of constraints in CREATE TABLE) are the table's, never
the model's. Indexes on expressions or raw SQL are matched by name only.
"""

from __future__ import annotations

from typing import Any, Protocol

import peewee

from ..adapters.peewee import create_index, index_parts
from .change import Change, Safety

__all__ = ["index_changes"]


class Table(Protocol):
    """A model and its existing table, read (`runtime.schema.differences.Table`)."""

    db: peewee.Database
    migrator: Any
    model: Any
    meta: Any
    table: str
    schema: str | None
    columns: dict[str, Any]

    def rows(self) -> int: ...


def index_changes(table: Table) -> tuple[list[Change], list[Change]]:
    """(changes that make indexes, changes that drop them) for `table`."""
    return _Indexes(table).changes()


class _Indexes:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.model = table.model
        self.name: str = table.table

    def changes(self) -> tuple[list[Change], list[Change]]:
        db, schema = self.table.db, self.table.schema
        primary = set(db.get_primary_keys(self.name, schema))
        theirs = [
            index
            for index in db.get_indexes(self.name, schema)
            if index.sql and not (index.unique and set(index.columns) == primary)
        ]
        wanted: list[Change] = []
        for index in self.table.meta.fields_to_index():
            if not isinstance(index, peewee.ModelIndex):
                continue  # raw SQL: nothing to compare it with
            name, expressions, unique = index_parts(index)
            columns = _columns_of(expressions)
            same = [
                i
                for i in theirs
                if i.name == name or (columns and i.columns == columns and i.unique == unique)
            ]
            if same:
                theirs.remove(same[0])
                if bool(same[0].unique) != unique:
                    wanted.append(self._replaced(index, name, columns, unique, same[0].name))
            else:
                wanted.append(self._new(index, name, columns, unique))
        return wanted, [self._dropped(index) for index in theirs]

    def _subject(self, columns: list[str] | None) -> str | None:
        """The field an index on one column is about."""
        fields = {f.column_name: f.name for f in self.table.meta.sorted_fields}
        if columns and len(columns) == 1 and columns[0] in fields:
            return str(fields[columns[0]])
        return None

    def _new(self, index: Any, name: str, columns: list[str] | None, unique: bool) -> Change:
        kind = "unique index" if unique else "index"
        on = f"{self.name}({', '.join(columns or ['…'])})"
        shared = self._shared_values(columns) if unique and columns else None
        todo, done = f'add {kind} "{name}"', f'added {kind} "{name}"'
        if shared:
            return Change(
                self.model,
                self._subject(columns),
                todo,
                done,
                f'cannot add the {kind} "{name}" on {on}: rows share {shared}',
                Safety.REFUSED,
                advice="make those rows differ, or drop unique=True",
            )
        return Change(
            self.model,
            self._subject(columns),
            todo,
            done,
            f'{kind} "{name}" on {on} is missing',
            Safety.AUTOMATIC,
            make=lambda: create_index(self.model, index),
        )

    def _replaced(
        self, index: Any, name: str, columns: list[str] | None, unique: bool, old: str
    ) -> Change:
        kind = "unique index" if unique else "index"
        subject = self._subject(columns)
        shared = self._shared_values(columns) if unique and columns else None
        if shared:
            return Change(
                self.model,
                subject,
                f'make index "{old}" unique',
                f'made index "{old}" unique',
                f'cannot make index "{old}" unique: rows share {shared}',
                Safety.REFUSED,
                advice="make those rows differ, or drop unique=True",
            )

        def make() -> None:
            self.table.migrator.drop_index(self.name, old).run()
            create_index(self.model, index)

        return Change(
            self.model,
            subject,
            f'drop index "{old}" and add it again as a {kind}',
            f'made index "{old}" a {kind}',
            f'index "{old}" of table "{self.name}" is {"not " if unique else ""}unique, '
            f"and {'' if unique else 'not '}in the model",
            Safety.DESTRUCTIVE,
            make=make,
            breaks_serving=False,
        )

    def _dropped(self, index: Any) -> Change:
        return Change(
            self.model,
            self._subject(index.columns),
            f'drop index "{index.name}"',
            f'dropped index "{index.name}"',
            f'index "{index.name}" of table "{self.name}" is not in the model',
            Safety.DESTRUCTIVE,
            make=lambda: self.table.migrator.drop_index(self.name, index.name).run(),
            breaks_serving=False,
        )

    def _shared_values(self, columns: list[str]) -> str | None:
        """Rows a unique index on `columns` would refuse, described, if there are any."""
        fields = {f.column_name: f for f in self.table.meta.sorted_fields}
        missing = [c for c in columns if c not in self.table.columns]
        if missing:
            # Added by this migration: every row gets one value, NULL (which a unique
            # index allows) or the field's default.
            filled = [c for c in missing if not fields[c].null]
            if filled and self.table.rows() > 1:
                return f"one value of the new column {', '.join(filled)}"
            return None
        cols = [peewee.Entity(c) for c in columns]
        count = peewee.fn.COUNT(peewee.SQL("*"))
        query = (
            peewee.Table(self.name, schema=self.table.schema)
            .select(*cols, count)
            .where(*[c.is_null(False) for c in cols])
            .group_by(*cols)
            .having(count > 1)
            .limit(1)
        )
        row = self.table.db.execute(query).fetchone()
        if row is None:
            return None
        values = ", ".join(f"{c}={v!r}" for c, v in zip(columns, row, strict=False))
        return f"{values} ({row[-1]} rows)"


def _columns_of(expressions: list[Any]) -> list[str] | None:
    """The columns of an index on plain fields; None for one on expressions."""
    if not all(isinstance(e, peewee.Field) for e in expressions):
        return None
    return [e.column_name for e in expressions]
