"""The SQL of the common one-row writes, made by Peewee once per shape (its private
parts: pinned with the rest in tests/adapters/test_peewee.py).

Peewee builds every statement anew from its query tree, and for a one-row insert or
update that building costs more than the database's work (a profile of
`Message.create()` on SQLite: about half its time). Here a write's *shape* (its model,
its statement kind, the columns it writes, the database's SQL dialect) keys the SQL that
Peewee rendered for it the first time; later writes of that shape only convert their
values into parameters, as Peewee's own rendering does (each column's `db_value`, in
Peewee's column order: fields by their `_sort_key`), and read the returned rows as
Peewee's cursor does (each field's `python_value`).

Only plain values take this path: a write whose value is an expression (`F + 1`,
`fn.NOW()`), one with ON CONFLICT, a column list, a FROM, a WHERE other than "this
primary key", or a caller's RETURNING, is built by Peewee as ever. The first write of a
shape checks that Peewee's parameters are exactly those computed here (same values,
same types); a shape that fails the check is never cached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import peewee

__all__ = ["Statement", "cached_statement"]

# shape -> the statement, or None for a shape Peewee must build every time
_STATEMENTS: dict[tuple[Any, ...], Statement | None] = {}
_MAX_SHAPES = 1024  # past this, new shapes are built by Peewee (a bound, never a leak)

Converter = Callable[[Any], Any] | None


class Statement:
    """One shape's SQL and how to read the rows it returns."""

    __slots__ = ("returned", "sql")

    def __init__(self, sql: str, returned: Sequence[tuple[str, Converter]]) -> None:
        self.sql = sql
        self.returned = tuple(returned)

    def run(self, database: Any, params: list[Any]) -> list[dict[str, Any]]:
        cursor = database.execute_sql(self.sql, params)
        returned = self.returned
        return [
            {
                name: value if convert is None else convert(value)
                for (name, convert), value in zip(returned, row, strict=True)
            }
            for row in cursor.fetchall()
        ]


def cached_statement(
    query: Any, database: Any, build: Callable[[], Any]
) -> tuple[Statement, list[Any]] | None:
    """The statement and parameters of `query` (a ModelInsert or ModelUpdate of one
    row, returning every column), or None when Peewee must build it. `build()` gives the
    RETURNING query Peewee would run: rendered once per shape, to take its SQL."""
    found = _shape_and_params(query)
    if found is None:
        return None
    columns, params = found
    key = (
        type(query),
        query.model,
        database.param,
        database.quote,
        type(getattr(database, "obj", database)),  # a proxy's database sets the dialect
        columns,
    )
    if key in _STATEMENTS:
        statement = _STATEMENTS[key]
        return None if statement is None else (statement, params)
    if len(_STATEMENTS) >= _MAX_SHAPES:
        return None
    sql, peewee_params = build().sql()
    same = len(params) == len(peewee_params) and all(map(_same_param, params, peewee_params))
    returned = [
        (field.name, field.python_value if field._coerce else None)
        for field in query.model._meta.sorted_fields
    ]
    statement = _STATEMENTS[key] = Statement(sql, returned) if same else None
    return None if statement is None else (statement, params)


def _same_param(ours: Any, theirs: Any) -> bool:
    """Equal values of one type; a driver's wrapper (psycopg's Binary, which has no ==)
    by what it wraps."""
    if type(ours) is not type(theirs):
        return False
    if ours == theirs:
        return True
    return hasattr(ours, "__dict__") and vars(ours) == vars(theirs)


def _shape_and_params(query: Any) -> tuple[tuple[str, ...], list[Any]] | None:
    """The columns a one-row write sets, by name (with a marker of its WHERE for an
    update), and its parameters in Peewee's order; None if it is not such a write. (Its
    caller has checked that it has no RETURNING of its caller's.)"""
    if getattr(query, "_cte_list", None):
        return None
    if isinstance(query, peewee.ModelInsert):
        return _insert(query)
    if isinstance(query, peewee.ModelUpdate):
        return _update(query)
    return None


def _insert(query: peewee.ModelInsert) -> tuple[tuple[str, ...], list[Any]] | None:
    row = query._insert
    if (
        query._query_type != peewee.Insert.SIMPLE
        or not isinstance(row, dict)
        or query._columns
        or query._on_conflict is not None
    ):
        return None
    defaults = query.model._meta.defaults
    columns = sorted({*row, *defaults}, key=_sort_key)
    params = []
    for column in columns:
        if not isinstance(column, peewee.Field):
            return None
        if column in row:
            value = row[column]
        else:
            value = defaults[column]
            value = value() if callable(value) else value
        param = _param(column, value)
        if param is _NODE:
            return None
        params.append(param)
    return tuple(column.name for column in columns), params


def _update(query: peewee.ModelUpdate) -> tuple[tuple[str, ...], list[Any]] | None:
    where, key = query._where, query.model._meta.primary_key
    if (
        not isinstance(query._update, dict)
        or query._from is not None
        or query._limit is not None
        or query._order_by
        or not isinstance(where, peewee.Expression)
        or where.lhs is not key
        or where.op != peewee.OP.EQ
        or isinstance(where.rhs, peewee.Node)
        or isinstance(key, peewee.CompositeKey)
    ):
        return None
    params = []
    names = []
    for column, value in sorted(query._update.items(), key=lambda item: _sort_key(item[0])):
        if not isinstance(column, peewee.Field):
            return None
        param = _param(column, value)
        if param is _NODE:
            return None
        params.append(param)
        names.append(column.name)
    key_param = _param(key, where.rhs)
    if key_param is _NODE:
        return None
    params.append(key_param)
    return (*names, "WHERE", key.name), params


_NODE = object()  # a value Peewee would write as SQL, not as a parameter


def _param(field: peewee.Field, value: Any) -> Any:
    """`value` as Peewee passes it for `field` (Value → Context.value): db_value()."""
    if isinstance(value, peewee.Node) and not (
        isinstance(value, peewee.Model) and isinstance(field, peewee.ForeignKeyField)
    ):
        return _NODE
    param = field.db_value(value)
    return _NODE if isinstance(param, peewee.Node) else param


def _sort_key(column: Any) -> Any:
    return column._sort_key if isinstance(column, peewee.Field) else (3, str(column))
