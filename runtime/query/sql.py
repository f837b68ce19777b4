"""A bound filter as a Peewee expression: every value a bound parameter, never text
pasted into SQL.

Two-valued, as `runtime.query.evaluate` is: a comparison with a null field is false,
not SQL's unknown, so `!` and `!=` mean in SQL what they mean in Python. Each
comparison on a nullable field is guarded (`x IS NOT NULL AND x < ?`), which is false,
never NULL, when x is null; `!=`, `!~` and `!in` are the `NOT` of their positive form.
Text is compared by code point on both databases (SQLite's BINARY collation;
PostgreSQL's "C", whatever the column's or the server's collation), and contains
is a substring test on text folded by `runtime.query.folding` (no LIKE, so `%` and
`_` are plain characters).
"""

from __future__ import annotations

import operator
from typing import Any

import peewee

from .bind import Bound, BoundAll, BoundAny, BoundNot, FieldIn, FieldTest
from .folding import SQLITE_FUNCTION, fold_strings

__all__ = ["filter_sql", "is_postgresql"]

_ORDER = {"=": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_NEGATIVE = {"!=": "=", "!~": "~"}


def is_postgresql(db: Any) -> bool:
    """Whether `db` (a database, or a proxy of one) is PostgreSQL."""
    while isinstance(db, peewee.DatabaseProxy):
        db = db.obj
    return isinstance(db, peewee.PostgresqlDatabase)


def filter_sql(bound: Bound, *, postgresql: bool) -> peewee.ColumnBase:
    """The WHERE expression of `bound`, for PostgreSQL or SQLite."""
    return _Sql(postgresql).node(bound)


class _Sql:
    def __init__(self, postgresql: bool) -> None:
        self.postgresql = postgresql
        self.collate = peewee.SQL('COLLATE "C"' if postgresql else "COLLATE BINARY")

    def node(self, bound: Bound) -> Any:
        if isinstance(bound, BoundNot):
            return peewee.Negated(self.node(bound.operand))
        if isinstance(bound, BoundAll | BoundAny):
            glue = " AND " if isinstance(bound, BoundAll) else " OR "
            return peewee.NodeList([self.node(b) for b in bound.operands], glue, parens=True)
        if isinstance(bound, FieldIn):
            return self.membership(bound)
        return self.test(bound)

    def test(self, test: FieldTest) -> Any:
        field = test.field
        if test.value is None:  # = null, != null
            return field.is_null(test.operator == "=")
        positive = _NEGATIVE.get(test.operator, test.operator)
        if positive == "~":
            found = self.contains(field, test.value)
        else:
            column = self.column(field, test.text)
            found = peewee.Expression(column, _ORDER[positive], self.param(field, test.value))
        found = self.guarded(field, found)
        return peewee.Negated(found) if positive != test.operator else found

    def membership(self, test: FieldIn) -> Any:
        field, parts = test.field, []
        if test.values:
            column = self.column(field, test.text)
            values = peewee.EnclosedNodeList([self.param(field, v) for v in test.values])
            parts.append(self.guarded(field, peewee.Expression(column, "IN", values)))
        if test.with_null:
            parts.append(field.is_null(True))
        found = parts[0] if len(parts) == 1 else peewee.NodeList(parts, " OR ", parens=True)
        return peewee.Negated(found) if test.negated else found

    def contains(self, field: peewee.Field, needle: str) -> Any:
        if self.postgresql:
            folded = peewee.fn.translate(field, *map(peewee.Value, fold_strings()))
            return operator.gt(peewee.fn.strpos(folded, needle), 0)
        return operator.gt(peewee.fn.instr(peewee.Function(SQLITE_FUNCTION, [field]), needle), 0)

    def column(self, field: peewee.Field, text: bool) -> Any:
        if text:
            return peewee.NodeList((field, self.collate))
        if self.postgresql and field.field_type == "FLOAT":
            # Peewee's FloatField is PostgreSQL's 4-byte real, which reaches Python as
            # its shortest decimal text (1101542528 as 1.1015425e+09): compare that.
            return peewee.Cast(peewee.Cast(field, "text"), "double precision")
        return field

    def param(self, field: peewee.Field, value: Any) -> Any:
        # The field's own conversion (dates as SQLite text, UUIDs as hex, …), applied
        # here as Peewee would on `field == value`: a collated column has no converter.
        return peewee.Value(field.db_value(value), unpack=False)

    def guarded(self, field: peewee.Field, found: Any) -> Any:
        """`found`, false rather than NULL when the field is null."""
        if not field.null:
            return found
        return peewee.NodeList([field.is_null(False), found], " AND ", parens=True)
