"""A bound filter as a Python function of a record's values, compiled once.

`compile_predicate(bound)` walks the tree once and returns nested closures; calling
the result on a record (field name → value, as Peewee gives them: a record's
`__data__`) touches no tree. It answers what `runtime.query.sql` makes the database
answer: two-valued (a comparison with a null field is false, and `!`, `!=`, `!~`,
`!in` are its negation), text by code point, `~` as a substring of the folded text.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from .bind import Bound, BoundAll, BoundAny, BoundNot, FieldIn, FieldTest
from .folding import fold

__all__ = ["Predicate", "compile_predicate"]

Predicate = Callable[[Mapping[str, Any]], bool]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_NEGATIVE = {"!=": "=", "!~": "~"}


def compile_predicate(bound: Bound) -> Predicate:
    if isinstance(bound, BoundNot):
        inner = compile_predicate(bound.operand)
        return lambda values: not inner(values)
    if isinstance(bound, BoundAll):
        parts = tuple(compile_predicate(b) for b in bound.operands)
        return lambda values: all(part(values) for part in parts)
    if isinstance(bound, BoundAny):
        parts = tuple(compile_predicate(b) for b in bound.operands)
        return lambda values: any(part(values) for part in parts)
    if isinstance(bound, FieldIn):
        return _membership(bound)
    return _test(bound)


def _test(test: FieldTest) -> Predicate:
    name, wanted = test.field.name, test.value
    if wanted is None:  # = null, != null
        if test.operator == "=":
            return lambda values: values.get(name) is None
        return lambda values: values.get(name) is not None
    positive = _NEGATIVE.get(test.operator, test.operator)
    found: Predicate
    if positive == "~":

        def found(values: Mapping[str, Any]) -> bool:
            value = values.get(name)
            return value is not None and wanted in fold(value)  # type: ignore[operator]

    else:
        compare = _COMPARE[positive]

        def found(values: Mapping[str, Any]) -> bool:
            value = values.get(name)
            return value is not None and compare(value, wanted)

    if positive != test.operator:
        return lambda values: not found(values)
    return found


def _membership(test: FieldIn) -> Predicate:
    name, wanted, with_null, negated = (
        test.field.name,
        frozenset(test.values),
        test.with_null,
        test.negated,
    )

    def matches(values: Mapping[str, Any]) -> bool:
        value = values.get(name)
        inside = with_null if value is None else value in wanted
        return inside != negated

    return matches
