"""The one converter from Python values to what JSON can carry.

Records (through the API and in events) and custom event data alike are sent this way,
so a value looks the same whichever path it takes:

| Python value | JSON |
| --- | --- |
| datetime, date, time | ISO 8601 string |
| Decimal | string (exact: no float rounding) |
| UUID | string |
| bytes, bytearray, memoryview | base64 string |
| a model instance (a foreign key) | its primary key |
| NaN, infinities | null |
| set, frozenset, tuple | array |
| an Enum member | its value |
| anything else JSON has no type for | `str(value)` |

Text goes out as UTF-8, which cannot encode a lone surrogate (what JSON's `"\\ud800"`
escape decodes to): `has_lone_surrogate` and `holds_lone_surrogates` find one, for the
checks at the edges (a client's JSON, a handler's answer, a broadcast's data).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import enum
import math
import re
import uuid
from typing import Any

import peewee

__all__ = [
    "has_lone_surrogate",
    "holds_lone_surrogates",
    "json_tree",
    "json_value",
    "sendable_tree",
]

_NATIVE = (str, int, bool, type(None))
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_value(value: Any) -> Any:
    """One scalar as JSON can carry it (containers are left to `json_tree`)."""
    if isinstance(value, _NATIVE):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime.date | datetime.time):  # a datetime is a date
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value) if value.is_finite() else None
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, peewee.Model):
        return json_value(value.get_id())
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if isinstance(value, dict | list | tuple | set | frozenset):
        return json_tree(value)
    return str(value)


def json_tree(value: Any, _depth: int = 0) -> Any:
    """A deep copy of `value` made only of JSON types (dict keys become strings).

    Copying matters for custom events: the caller may change its dict after
    broadcasting it, and the event kept in the history must not change with it.
    """
    if _depth > 100:
        raise ValueError("data is nested more than 100 levels deep")
    if isinstance(value, dict):
        return {_key(k): json_tree(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_tree(item, _depth + 1) for item in value]
    return json_value(value)


def _key(key: Any) -> str:
    # What json.dumps does with non-string keys, made explicit.
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return "null" if key is None else ("true" if key else "false")
    value = json_value(key)
    return value if isinstance(value, str) else str(value)


def sendable_tree(value: Any, what: str = "data") -> Any:
    """`json_tree(value)`, and a ValueError if any text in it, keys included, is not text
    UTF-8 can encode: it could be sent to nobody."""
    tree = json_tree(value)
    if holds_lone_surrogates(tree):
        raise ValueError(
            f"{what} holds a lone surrogate (like '\\ud800'), which UTF-8 cannot encode"
        )
    return tree


def has_lone_surrogate(text: str) -> bool:
    """Whether `text` holds a lone surrogate, which UTF-8 cannot encode (an ASCII string
    is known not to at once)."""
    return not text.isascii() and _LONE_SURROGATE.search(text) is not None


def holds_lone_surrogates(value: Any) -> bool:
    """Whether any string in a JSON value (dicts, lists, scalars), a dict's keys
    included, holds a lone surrogate."""
    pending = [value]
    while pending:  # a loop, not recursion: a client's JSON nests as deep as it likes
        item = pending.pop()
        if isinstance(item, str):
            if has_lone_surrogate(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
