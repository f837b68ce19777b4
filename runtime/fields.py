"""Client JSON values to field values: checked by the field's type, with clear errors.

Whatever a client sends either becomes a value the database can store and read back,
or is a BadRequest naming the field: never an error deep in SQLite (an integer past 64
bits, a lone surrogate, an infinite float) that would surface as a 500.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import ipaddress
import math
import re
import uuid
from collections.abc import Callable
from typing import Any

import peewee

from .errors import BadRequest, NotFound
from .json_field import JSONField
from .json_values import has_lone_surrogate, sendable_tree

__all__ = [
    "coerce_field_value",
    "has_surrogates",
    "missing_required",
    "parse_record_id",
]

_INTEGER_ID = re.compile(r"-?[0-9]{1,19}")
_INT64 = range(-(2**63), 2**63)  # what SQLite's INTEGER holds
# Whether a text holds a lone surrogate (JSON's "\\ud800"), which UTF-8 cannot carry.
has_surrogates = has_lone_surrogate


def parse_record_id(model: type[peewee.Model], raw: str) -> Any:
    """The primary-key value named by a URL segment; NotFound when it cannot be one."""
    if isinstance(model._meta.primary_key, peewee.IntegerField):
        if not _INTEGER_ID.fullmatch(raw) or int(raw) not in _INT64:
            raise NotFound("No such record.")
        return int(raw)
    if has_surrogates(raw) or "\x00" in raw:  # PostgreSQL text has no NUL: same answer on both
        raise NotFound("No such record.")
    return raw


def missing_required(model: type[peewee.Model], values: dict[str, Any]) -> list[str]:
    """Fields a new record must have that `values` lacks."""
    pk = model._meta.primary_key
    return [
        name
        for name, field in model._meta.fields.items()
        if field is not pk and not field.null and field.default is None and name not in values
    ]


def coerce_field_value(field: peewee.Field, value: Any) -> Any:
    """`value` from a client's JSON as a value of `field`, or BadRequest naming the field."""
    if value is None:
        if field.null:
            return None
        raise BadRequest(
            f"Field {field.name!r} may not be null.", reason="not_null", field=field.name
        )
    # A foreign key takes a value of the field it points to, but a mistake in it is the
    # foreign key's: `"box": "abc"` is blamed on `box`, not on the boxes' `id`.
    target = field.rel_field if isinstance(field, peewee.ForeignKeyField) else field
    coerced = _coerce(target, value, field.name)
    _check_storable(target, coerced, field.name)
    return coerced


def _coerce(field: peewee.Field, value: Any, name: str) -> Any:
    for kind, convert in _CONVERTERS:
        if isinstance(field, kind):
            return convert(field, value, name)
    if isinstance(value, dict | list):  # any other field, custom ones included
        raise BadRequest(f"Field {name!r} must be a plain value.")
    return value


def _boolean(field: peewee.Field, value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise BadRequest(f"Field {name!r} must be true or false.")


def _ipv4(field: peewee.Field, value: Any, name: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value if isinstance(value, str) else ""))
    except ValueError:
        raise BadRequest(f"Field {name!r} must be an IPv4 address.") from None


def _integer(field: peewee.Field, value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value in _INT64:
        return value
    raise BadRequest(f"Field {name!r} must be a whole number from -2**63 to 2**63-1.")


def _finite_float(field: peewee.Field, value: Any, name: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer past 1e308
            number = math.inf
        if math.isfinite(number):
            return number
    raise BadRequest(f"Field {name!r} must be a finite number.")


def _decimal(field: peewee.DecimalField, value: Any, name: str) -> decimal.Decimal:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            number = decimal.Decimal("NaN")
        whole_digits = (field.max_digits or 0) - (field.decimal_places or 0)
        if number.is_finite() and (not field.max_digits or abs(number) < 10**whole_digits):
            return number
    raise BadRequest(f"Field {name!r} must be a decimal number that fits the field.")


def _date_or_datetime(field: peewee.Field, value: Any, name: str) -> datetime.date:
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed.date() if isinstance(field, peewee.DateField) else parsed
    raise BadRequest(f"Field {name!r} must be an ISO 8601 date or time.")


def _time(field: peewee.Field, value: Any, name: str) -> datetime.time:
    try:
        return datetime.time.fromisoformat(value if isinstance(value, str) else "")
    except ValueError:
        raise BadRequest(f"Field {name!r} must be an ISO 8601 time.") from None


def _uuid(field: peewee.Field, value: Any, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value if isinstance(value, str) else "")
    except ValueError:
        raise BadRequest(f"Field {name!r} must be a UUID.") from None


def _base64(field: peewee.Field, value: Any, name: str) -> bytes:
    try:
        return base64.b64decode(value if isinstance(value, str) else "?", validate=True)
    except binascii.Error:
        raise BadRequest(f"Field {name!r} must be base64 text.") from None


def _json(field: peewee.Field, value: Any, name: str) -> Any:
    try:  # the same check as data sent to subscribers: depth, then text UTF-8 can carry
        return sendable_tree(value, what="the value")
    except ValueError as exc:
        raise BadRequest(f"Field {name!r} cannot be kept as JSON: {exc}.") from None


def _text(field: peewee.Field, value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"Field {name!r} must be a string.")
    max_length = getattr(field, "max_length", None)
    if isinstance(field, peewee.CharField) and max_length and len(value) > max_length:
        raise BadRequest(f"Field {name!r} is longer than {max_length} characters.")
    return value


# A client's value for a field of each type, errors naming `name` (the field the client
# named: a foreign key is checked as the field it points to). The first match wins: a
# subclass comes before its base (IPField is an IntegerField); other fields take any
# plain value.
_CONVERTERS: tuple[tuple[Any, Callable[[Any, Any, str], Any]], ...] = (
    (peewee.BooleanField, _boolean),
    (peewee.IPField, _ipv4),  # stored as an integer, given as text
    (peewee.IntegerField, _integer),
    (peewee.FloatField, _finite_float),
    (peewee.DecimalField, _decimal),
    (peewee.DateTimeField | peewee.DateField, _date_or_datetime),
    (peewee.TimeField, _time),
    (peewee.UUIDField, _uuid),
    (peewee.BlobField, _base64),  # sent as base64, as records are returned
    (JSONField, _json),  # any JSON value: objects and arrays too (a TextField underneath)
    (peewee.CharField | peewee.TextField, _text),
)


def _check_storable(field: peewee.Field, value: Any, name: str) -> None:
    """The last word for any field type, custom ones included: SQLite must take it."""
    try:
        stored = field.db_value(value)
    except (ValueError, TypeError, ArithmeticError):
        stored = _UNSTORABLE
    if (
        stored is _UNSTORABLE
        or (isinstance(stored, int) and stored not in _INT64)
        or (isinstance(stored, float) and not math.isfinite(stored))
        or (isinstance(stored, str) and has_surrogates(stored))
    ):
        raise BadRequest(f"Field {name!r} has a value that cannot be stored.")


_UNSTORABLE = object()
