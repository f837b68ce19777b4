"""Client JSON values to field values: checked by the field's type, with clear errors."""

from __future__ import annotations

import datetime
import re
from typing import Any

import peewee

from .errors import BadRequest, NotFound

__all__ = ["coerce_field_value", "missing_required", "parse_record_id"]

_INTEGER_ID = re.compile(r"-?[0-9]{1,19}")


def parse_record_id(model: type[peewee.Model], raw: str) -> Any:
    """The primary-key value named by a URL segment; NotFound when it cannot be one."""
    if isinstance(model._meta.primary_key, peewee.IntegerField):
        if not _INTEGER_ID.fullmatch(raw):
            raise NotFound("No such record.")
        return int(raw)
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
    name = field.name
    if value is None:
        if field.null:
            return None
        raise BadRequest(f"Field {name!r} may not be null.")
    if isinstance(field, peewee.BooleanField):
        if isinstance(value, bool):
            return value
        raise BadRequest(f"Field {name!r} must be true or false.")
    if isinstance(field, peewee.ForeignKeyField):
        return coerce_field_value(field.rel_field, value)
    if isinstance(field, peewee.IntegerField):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
            return value
        raise BadRequest(f"Field {name!r} must be a whole number.")
    if isinstance(field, peewee.FloatField | peewee.DecimalField):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise BadRequest(f"Field {name!r} must be a number.")
    if isinstance(field, peewee.DateTimeField | peewee.DateField):
        if isinstance(value, str):
            try:
                parsed = datetime.datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                return parsed.date() if isinstance(field, peewee.DateField) else parsed
        raise BadRequest(f"Field {name!r} must be an ISO 8601 date or time.")
    if isinstance(field, peewee.CharField | peewee.TextField):
        if not isinstance(value, str):
            raise BadRequest(f"Field {name!r} must be a string.")
        max_length = getattr(field, "max_length", None)
        if isinstance(field, peewee.CharField) and max_length and len(value) > max_length:
            raise BadRequest(f"Field {name!r} is longer than {max_length} characters.")
        return value
    if isinstance(value, dict | list):
        raise BadRequest(f"Field {name!r} must be a plain value.")
    return value
