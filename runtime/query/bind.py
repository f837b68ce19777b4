"""A parsed filter bound to one model and one reader: names checked, values typed.

A field must be one the reader sees (`Model.visible_fields(user)`): a hidden field, or
one the model hides from this reader, is refused exactly as an unknown one is, so a
filter cannot probe values the reader may not read. A value is converted to the
field's type as the records API converts a client's value (`coerce_field_value`):
quoted text compared with a date-time field is read as ISO 8601, `count = "abc"` on an
integer field is an error naming `count`.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any as AnyValue

import peewee

from ..errors import BadRequest
from ..fields import coerce_field_value
from ..json_field import JSONField
from ..rules import UserLike
from .errors import FilterError
from .folding import fold
from .tree import All, Any, Literal, Me, Membership, Node, Not, Value

__all__ = ["Bound", "FieldIn", "FieldTest", "bind_filter"]

_EQUALITY = ("=", "!=")
_CONTAINS = ("~", "!~")
# Fields a filter may name, as (field type, what it holds); the first match wins.
_REFUSED = (JSONField, peewee.BlobField, peewee.IPField, peewee.TimestampField)
_TEXT = (peewee.CharField, peewee.TextField)
_PLAIN = (
    peewee.BooleanField,
    peewee.IntegerField,
    peewee.FloatField,
    peewee.DecimalField,
    peewee.DateTimeField,
    peewee.DateField,
    peewee.TimeField,
    peewee.UUIDField,
)


@dataclass(frozen=True, slots=True)
class FieldTest:
    """`field operator value`; `value` is None only for `=`/`!=` (a null test), and is
    already folded for `~`/`!~`."""

    field: peewee.Field
    operator: str
    value: AnyValue
    text: bool  # compared as text: by code point, in both databases


@dataclass(frozen=True, slots=True)
class FieldIn:
    """`field in (values…)` (or not, when `negated`); nulls in the list as `with_null`."""

    field: peewee.Field
    values: tuple[AnyValue, ...]
    with_null: bool
    negated: bool
    text: bool


@dataclass(frozen=True, slots=True)
class BoundNot:
    operand: Bound


@dataclass(frozen=True, slots=True)
class BoundAll:
    operands: tuple[Bound, ...]


@dataclass(frozen=True, slots=True)
class BoundAny:
    operands: tuple[Bound, ...]


Bound = FieldTest | FieldIn | BoundNot | BoundAll | BoundAny


def bind_filter(node: Node, model: type[peewee.Model], user: UserLike | None) -> Bound:
    """`node` for `model` as `user` reads it, or FilterError at the offending name/value."""
    visible = set(model.visible_fields(user)) if hasattr(model, "visible_fields") else None
    return _Binder(model, visible, user).bind(node)


class _Binder:
    def __init__(
        self, model: type[peewee.Model], visible: set[str] | None, user: UserLike | None
    ) -> None:
        self.fields: dict[str, peewee.Field] = model._meta.fields
        self.visible = visible if visible is not None else set(self.fields)
        self.user = user

    def bind(self, node: Node) -> Bound:
        if isinstance(node, Not):
            return BoundNot(self.bind(node.operand))
        if isinstance(node, All):
            return BoundAll(tuple(self.bind(n) for n in node.operands))
        if isinstance(node, Any):
            return BoundAny(tuple(self.bind(n) for n in node.operands))
        field, text = self.field(node.field, node.position)
        if isinstance(node, Membership):
            values = [self.value(field, v, "in") for v in node.values]
            kept = tuple(v for v in values if v is not None)
            return FieldIn(field, kept, len(kept) < len(values), node.negated, text)
        if node.operator in _CONTAINS:
            return FieldTest(field, node.operator, self.needle(field, text, node.value), text)
        return FieldTest(field, node.operator, self.value(field, node.value, node.operator), text)

    def field(self, name: str, position: int) -> tuple[peewee.Field, bool]:
        field = self.fields.get(name)
        if field is None or name not in self.visible:
            raise FilterError(f"no field {name[:64]!r}", position)
        target = field.rel_field if isinstance(field, peewee.ForeignKeyField) else field
        if isinstance(target, _REFUSED) or not isinstance(target, _TEXT + _PLAIN):
            raise FilterError(f"field {name!r} cannot be used in a filter", position)
        return field, isinstance(target, _TEXT)

    def needle(self, field: peewee.Field, text: bool, value: Value) -> str:
        if not text:
            message = f"~ and !~ take a text field; {field.name!r} is not one"
            raise FilterError(message, value.position)
        if not isinstance(value, Literal) or not isinstance(value.value, str):
            raise FilterError("~ and !~ take quoted text", value.position)
        return fold(value.value) or ""

    def value(self, field: peewee.Field, value: Value, operator: str) -> AnyValue:
        if isinstance(value, Me):
            raw = self.user.id if self.user is not None else None
        else:
            raw = value.value
        if isinstance(value, Me) or raw is None:
            if operator not in (*_EQUALITY, "in"):
                what = "@me" if isinstance(value, Me) else "null"
                raise FilterError(f"{what} can only be used with =, !=, in and !in", value.position)
            if raw is None:
                return None
        try:
            coerced = coerce_field_value(field, raw)
        except BadRequest as exc:
            raise FilterError(exc.message, value.position) from None
        return _comparable(field, coerced, value.position)


def _comparable(field: peewee.Field, value: AnyValue, position: int) -> AnyValue:
    """Times as the runtime stores them: naive, in UTC."""
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.UTC).replace(tzinfo=None)
    if isinstance(value, datetime.time) and value.tzinfo is not None:
        raise FilterError(f"field {field.name!r} takes a time without an offset", position)
    return value
