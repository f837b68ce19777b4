"""A select of one row by one key, with the row of one foreign key joined, its SQL
rendered by Peewee once per kind of database.

The session lookup runs on every request and every realtime connection, and Peewee's
building of its query from the query tree cost about twenty times what SQLite takes to
answer it (Session.resolve: 660 µs, the query 32 µs). The SQL Peewee renders for
`model.select(<model's fields>, <related model's fields>).join(related).where(key ==
value).limit(1)` is kept per database class; a lookup binds the key as Peewee does
(the key field's `db_value`) and reads the row as Peewee's cursor does (each field's
`python_value`, the models built from stored values: nothing marked changed).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import peewee

from .peewee import model_from_stored

__all__ = ["JoinedLookup"]

M = TypeVar("M", bound=peewee.Model)

_MARK = "\x00key"  # the key's place in the SQL Peewee renders, found by its parameter


class JoinedLookup(Generic[M]):
    """`get(value)`: the `model` row whose `key` is `value`, with the row its `join`
    foreign key points at in place (an inner join: None when either is missing)."""

    def __init__(self, model: type[M], key: peewee.Field, join: peewee.ForeignKeyField) -> None:
        self.model, self.key, self.join = model, key, join
        self.related: type[peewee.Model] = join.rel_model
        self._fields = list(model._meta.sorted_fields)
        self._related_fields = list(self.related._meta.sorted_fields)
        self._sql: dict[type, str] = {}

    def get(self, value: Any) -> M | None:
        database = self.model._meta.database
        real = database.obj if isinstance(database, peewee.Proxy) else database
        sql = self._sql.get(type(real))
        if sql is None:
            sql = self._sql[type(real)] = self._render()
        row = database.execute_sql(sql, [self.key.db_value(value), 1]).fetchone()
        if row is None:
            return None
        count = len(self._fields)
        related = model_from_stored(
            self.related,
            {
                f.name: f.python_value(v)
                for f, v in zip(self._related_fields, row[count:], strict=True)
            },
        )
        values = {f.name: f.python_value(v) for f, v in zip(self._fields, row[:count], strict=True)}
        values[self.join.name] = related
        return model_from_stored(self.model, values)

    def _render(self) -> str:
        query = (
            self.model.select(*self._fields, *self._related_fields)
            .join(self.related, on=self.join == self.related._meta.primary_key)
            .where(self.key == _MARK)
            .limit(1)
        )
        sql, params = query.sql()
        if params != [_MARK, 1]:  # Peewee renders this select otherwise now
            raise RuntimeError(f"unexpected parameters of a key lookup: {params!r}")
        return str(sql)
