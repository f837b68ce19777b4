"""How a database differs from the models bound to it.

`differences()` reads the tables back with Peewee's introspection (`get_columns`,
`get_indexes`, `get_foreign_keys`) and answers with one `Change` per difference: what
it is, how safe it is to make (`Safety`), and how to make it with `playhouse.migrate`.
It changes nothing itself.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import peewee
from playhouse.migrate import SchemaMigrator

from ..adapters.peewee import sqlite_retype_column
from .change import Change, Safety
from .families import family, sql_type
from .indexes import index_changes

__all__ = ["Table", "differences"]


def differences(
    db: peewee.Database, migrator: SchemaMigrator, models: Iterable[type[peewee.Model]]
) -> list[Change]:
    """Every difference between `models` (all bound to `db`) and their tables."""
    changes: list[Change] = []
    for model in peewee.sort_models(list(models)):
        meta = model._meta
        if not db.table_exists(meta.table_name, meta.schema):
            changes.append(
                Change(
                    model,
                    None,
                    f'create table "{meta.table_name}"',
                    f'created table "{meta.table_name}"',
                    f'table "{meta.table_name}" does not exist',
                    Safety.AUTOMATIC,
                    make=functools.partial(model.create_table, safe=False),
                )
            )
        else:
            changes += Table(db, migrator, model).differences()
    return changes


# Fields of these types get this value in rows that exist when they are added NOT NULL
# without a default (as Django offers a one-off default): other types have no such value.
_EMPTY_VALUES: dict[str, Any] = {
    "CHAR": "",
    "VARCHAR": "",
    "TEXT": "",
    "INT": 0,
    "BIGINT": 0,
    "SMALLINT": 0,
    "FLOAT": 0,
    "DOUBLE": 0,
    "DECIMAL": 0,
    "BOOL": False,
}


class Table:
    """One model and its existing table."""

    def __init__(self, db: peewee.Database, migrator: SchemaMigrator, model: Any) -> None:
        self.db, self.migrator, self.model = db, migrator, model
        self.meta = model._meta
        self.table: str = self.meta.table_name
        self.schema: str | None = self.meta.schema
        self.columns = {c.name: c for c in db.get_columns(self.table, self.schema)}
        self._rows: int | None = None

    def differences(self) -> list[Change]:
        fields = [f for f in self.meta.sorted_fields if f.column_name]
        added = [self._added(f) for f in fields if f.column_name not in self.columns]
        kept = [f for f in fields if f.column_name in self.columns]
        loosened = [c for f in kept if (c := self._loosened(f))]
        mine = {f.column_name for f in fields}
        extra = [self._extra(c) for name, c in self.columns.items() if name not in mine]
        retyped = [c for f in kept if (c := self._retyped(f))]
        tightened = [c for f in kept if (c := self._tightened(f))]
        wanted, unwanted = index_changes(self)
        # Order of making: columns first; indexes are dropped before the columns they
        # cover (SQLite cannot drop an indexed column), and made once theirs exist.
        return [*added, *loosened, *unwanted, *extra, *retyped, *tightened, *wanted]

    # -- rows ---------------------------------------------------------------------------

    def rows(self) -> int:
        """How many rows the table has (0, 1, or 2 meaning "more than one")."""
        if self._rows is None:
            query = peewee.Table(self.table, schema=self.schema).select(peewee.SQL("1")).limit(2)
            self._rows = len(self.db.execute(query).fetchall())
        return self._rows

    # -- columns ------------------------------------------------------------------------

    def _change(self, field: Any, todo: str, done: str, problem: str, **kw: Any) -> Change:
        return Change(self.model, field.name if field else None, todo, done, problem, **kw)

    def _added(self, field: Any) -> Change:
        column, table = field.column_name, self.table
        todo, done = f'add column "{column}"', f'added column "{column}"'
        if field.null or field.default is not None:
            return self._change(
                field,
                todo,
                done,
                f'column "{column}" is missing from table "{table}"',
                safety=Safety.AUTOMATIC,
                make=lambda: self._add_column(field, field.default),
            )
        problem = f'column "{column}" is NOT NULL without a default and the table "{table}" exists'
        empty = (
            None
            if isinstance(field, peewee.ForeignKeyField)
            else _EMPTY_VALUES.get(field.field_type)
        )
        if empty is None and self.rows():
            return self._change(
                field,
                todo,
                done,
                problem + " with rows",
                safety=Safety.REFUSED,
                advice="give it a default or null=True",
            )
        if self.rows():
            done += f" (rows that were there: {empty!r})"
        return self._change(
            field,
            todo,
            done,
            problem,
            safety=Safety.MIGRATE,
            make=lambda: self._add_column(field, empty),
            advice="give it a default or null=True, or ",
        )

    def _add_column(self, field: Any, default: Any) -> None:
        clone = field.clone()
        clone.index = clone.unique = False  # indexes are changes of their own
        if default is None and not field.null:  # an empty table: nothing to fill
            clone.null = True
            self.migrator.add_column(self.table, field.column_name, clone).run()
            self.migrator.add_not_null(self.table, field.column_name).run()
            return
        clone.default = default
        self.migrator.add_column(self.table, field.column_name, clone).run()

    def _loosened(self, field: Any) -> Change | None:
        column = self.columns[field.column_name]
        if field.primary_key or not field.null or column.null:
            return None
        name = field.column_name
        return self._change(
            field,
            f'make column "{name}" nullable',
            f'made column "{name}" nullable',
            f'column "{name}" is NOT NULL in table "{self.table}" and null=True in the model',
            safety=Safety.MIGRATE,
            make=lambda: self.migrator.drop_not_null(self.table, name).run(),
        )

    def _tightened(self, field: Any) -> Change | None:
        column = self.columns[field.column_name]
        if field.primary_key or field.null or not column.null:
            return None
        name = field.column_name
        return self._change(
            field,
            f'make column "{name}" NOT NULL',
            f'made column "{name}" NOT NULL',
            f'column "{name}" is nullable in table "{self.table}" and not in the model',
            safety=Safety.DESTRUCTIVE,
            make=lambda: self.migrator.add_not_null(self.table, name).run(),
            breaks_serving=False,
        )

    def _retyped(self, field: Any) -> Change | None:
        column = self.columns[field.column_name]
        wanted = sql_type(self.db, field)
        theirs, mine = family(column.data_type), family(wanted)
        if field.primary_key or theirs is None or mine is None or theirs == mine:
            return None
        name = field.column_name
        return self._change(
            field,
            f'retype column "{name}" from {theirs} to {mine}',
            f'retyped column "{name}" from {theirs} to {mine}',
            f'column "{name}" of table "{self.table}" is {theirs}, the model says {mine}',
            safety=Safety.DESTRUCTIVE,
            make=lambda: self._retype(field, wanted),
        )

    def _retype(self, field: Any, wanted: str) -> None:
        name = field.column_name
        if isinstance(self.db, peewee.PostgresqlDatabase):
            # PostgreSQL converts only with USING (text to integer, say); a value that
            # does not convert fails the migration, which then changes nothing.
            cast = peewee.SQL(f'"{name}"::{wanted}')
            self.migrator.alter_column_type(self.table, name, field, cast).run()
        else:  # SQLite rebuilds the table, its rows and indexes (playhouse.migrate)
            sqlite_retype_column(self.migrator, self.table, name, field)

    def _extra(self, column: Any) -> Change:
        name, table = column.name, self.table
        todo, done = f'drop column "{name}"', f'dropped column "{name}"'
        if column.primary_key:
            return Change(
                self.model,
                name,
                todo,
                done,
                f'column "{name}" is the primary key of table "{table}" and not in the model',
                Safety.REFUSED,
                advice="change the primary key by hand",
            )
        harmless = column.null or column.default is not None
        problem = (
            f'column "{name}" of table "{table}" is no longer in the model'
            if harmless
            else f'column "{name}" of table "{table}" is no longer in the model and is '
            "NOT NULL without a default (inserts would fail)"
        )
        return Change(
            self.model,
            name,
            todo,
            done,
            problem,
            Safety.DESTRUCTIVE,
            make=lambda: self._drop_column(name),
            breaks_serving=not harmless,
        )

    def _drop_column(self, name: str) -> None:
        from playhouse.migrate import SqliteMigrator

        if isinstance(self.migrator, SqliteMigrator):
            # SQLite's DROP COLUMN refuses a column that a foreign key or an index uses:
            # those are dropped with it (the indexes are changes of their own, made
            # before), and a foreign key's column by rebuilding the table.
            keys = self.db.get_foreign_keys(self.table, self.schema)
            if any(key.column == name for key in keys):
                self.migrator.drop_column(self.table, name, legacy=True).run()
                return
        self.migrator.drop_column(self.table, name).run()
