"""The filter language's parser and binder, without a database: the tree, the bounds,
and every refusal with the position it points at."""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee
import pytest

from runtime.json_field import JSONField
from runtime.query import FilterError, FilterLimits, compile_filter, parse_filter
from runtime.query.bind import FieldIn, FieldTest, bind_filter
from runtime.query.tree import All, Comparison, Literal, Me, Membership, Not
from runtime.query.tree import Any as AnyOf


class Thing(peewee.Model):
    title = peewee.CharField(null=True, max_length=20)
    count = peewee.IntegerField(null=True)
    at = peewee.DateTimeField(null=True)
    tags = JSONField(null=True)
    secret = peewee.CharField(null=True)

    @classmethod
    def visible_fields(cls, user: Any) -> tuple[str, ...]:
        # `secret` is hidden from everyone but user 7: a rule that varies by reader
        names = ("id", "title", "count", "at", "tags")
        return (*names, "secret") if user is not None and user.id == 7 else names


class Reader:
    def __init__(self, id: int) -> None:
        self.id, self.is_admin = id, False


def test_the_tree() -> None:
    assert parse_filter(
        "title ~ 'a\\'b' && (count >= -2.5 || at = null) && !count in (1, @me)"
    ) == All(
        (
            Comparison("title", "~", Literal("a'b", 8), 0),
            AnyOf(
                (
                    Comparison("count", ">=", Literal(-2.5, 28), 19),
                    Comparison("at", "=", Literal(None, 41), 36),
                )
            ),
            Not(Membership("count", (Literal(1, 61), Me(64)), False, 51)),
        )
    )
    assert parse_filter('x !in ("\\u00e9\\n", true, false)') == Membership(
        "x", (Literal("é\n", 7), Literal(True, 19), Literal(False, 25)), True, 0
    )


@pytest.mark.parametrize(
    "text, position, words",
    [
        ("", 0, "expected a field name"),
        ("title", 5, "expected an operator"),
        ("title = ", 8, "expected a value"),
        ("title = 'abc", 8, "never ends"),
        ("title = 'a\\qb'", 10, "unknown escape"),
        ("title = '\\u0000'", 9, "NUL"),
        ("title = '\\ud800'", 9, "surrogate"),
        ("title = 1 count = 2", 10, "expected '&&'"),
        ("(title = 1", 10, "expected ')'"),
        ("count in ()", 10, "expected a value"),
        ("count in (1,", 12, "expected a value"),
        ("count # 1", 6, "unexpected character"),
        ("count = 1e999", 8, "too large"),
        ("count == 1", 7, "expected a value"),
    ],
)
def test_bad_expressions_point_at_the_trouble(text: str, position: int, words: str) -> None:
    with pytest.raises(FilterError) as failure:
        parse_filter(text)
    assert failure.value.position == position and words in failure.value.message


def test_bounds() -> None:
    limits = FilterLimits(max_length=30, max_depth=2, max_terms=3)
    with pytest.raises(FilterError, match="longer than 30") as failure:
        parse_filter("count = 1 && " * 3, limits)
    assert failure.value.position == 30
    assert parse_filter("!(count = 1)", limits) == Not(Comparison("count", "=", Literal(1, 10), 2))
    with pytest.raises(FilterError, match="nested more than 2") as failure:
        parse_filter("!(!count = 1)", limits)
    assert failure.value.position == 2  # the third level
    with pytest.raises(FilterError, match="more than 3 terms") as failure:
        parse_filter("a = 1 || b in (1, 2, 3)", limits)
    assert failure.value.position == 21


@pytest.mark.parametrize(
    "text, user, position, words",
    [
        ("nope = 1", None, 0, "no field 'nope'"),
        ("secret = 'x'", None, 0, "no field 'secret'"),  # as unknown: no oracle
        ("secret = 'x'", Reader(8), 0, "no field 'secret'"),
        ("count = 'abc'", None, 8, "Field 'count' must be a whole number"),
        ("count = 1.5", None, 8, "Field 'count' must be a whole number"),
        ("count = 99999999999999999999", None, 8, "Field 'count'"),
        ("at > 'soon'", None, 5, "Field 'at' must be an ISO 8601"),
        ("title = 'abcdefghijklmnopqrstuvwxyz'", None, 8, "longer than 20"),
        ("title < null", None, 8, "null can only be used with"),
        ("count > @me", Reader(1), 8, "@me can only be used with"),
        ("count ~ '1'", None, 8, "take a text field"),
        ("title ~ 1", None, 8, "take quoted text"),
        ("tags = 1", None, 0, "cannot be used in a filter"),
    ],
)
def test_bad_fields_and_values(text: str, user: Any, position: int, words: str) -> None:
    with pytest.raises(FilterError) as failure:
        compile_filter(text, Thing, user)
    assert failure.value.position == position and words in failure.value.message


def test_values_are_typed_as_the_field_types_them() -> None:
    (at,) = [bind_filter(parse_filter("at > '2024-01-01T02:00:00+02:00'"), Thing, None)]
    assert isinstance(at, FieldTest) and at.value == dt.datetime(2024, 1, 1)  # UTC, naive
    mine = bind_filter(parse_filter("count in (@me, 3)"), Thing, Reader(7))
    assert isinstance(mine, FieldIn) and mine.values == (7, 3) and not mine.with_null
    visitor = bind_filter(parse_filter("count = @me"), Thing, None)
    assert isinstance(visitor, FieldTest) and visitor.value is None  # a null test
    assert compile_filter("secret = 'x'", Thing, Reader(7)).matches({"secret": "x"})


@pytest.mark.parametrize(
    "text, values, expected",
    [
        ("count != 1", {"count": None}, True),  # two-valued: not (null = 1)
        ("!(count = 1)", {"count": None}, True),
        ("count < 1", {"count": None}, False),
        ("!(count < 1)", {"count": None}, True),
        ("count !in (1, 2)", {"count": None}, True),
        ("count in (1, null)", {"count": None}, True),
        ("title !~ 'x'", {"title": None}, True),
        ("title ~ ''", {"title": ""}, True),
        ("title ~ 'ÉCOLE'", {"title": "une école"}, True),
    ],
)
def test_the_null_rule_and_the_case_rule_in_python(
    text: str, values: dict[str, Any], expected: bool
) -> None:
    assert compile_filter(text, Thing, None).matches(values) is expected
