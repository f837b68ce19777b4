"""The event codec: an event as bytes and back, the same event in every process.

Once events travel between server processes (through Redis, or a database outbox), the
process that delivers an event is often not the one that captured it. A read rule or a
filter there must see what it would have seen here: a record's values as Peewee read
them back (a Decimal with its exponent, a datetime with its zone, bytes as bytes),
custom data as it was, targets as frozensets. JSON alone cannot say that, and pickle
must never read bytes that came over a network.

What it guarantees:
- Every field of the event class travels (they are read from the dataclass, so a field
  added later travels too), and `decode(encode(event))` equals the event with every
  value of the same type, all the way down: `type(a) is type(b)`.
- Only the types below are carried. Any other value (a subclass too: an IntEnum is not
  an int) fails at `encode` with a TypeError naming the field and the type, never a
  silent `str()`; so does a dict key that is not a str. A string holding a lone
  surrogate, which UTF-8 cannot carry, is a ValueError.
- `decode` reads JSON only (no pickle, no eval) and checks what it reads: bytes that are
  not an encoded event (not UTF-8, not JSON, an unknown tag or field, a field of the
  wrong type, a value a tag cannot hold) raise a ValueError.

The format: compact UTF-8 JSON, `[1, {"<field>": <value>, ...}]`, 1 being the format's
version. A payload without a field that has a default gets that default (an event
written before the field existed); a field the class does not have is refused. Values
JSON has are written as themselves; the others as an object of one key, the tag:

| value | written as |
| --- | --- |
| str, bool, None, list, int within 64 bits, finite float | itself |
| dict (str keys) | itself; one whose only key starts with "~" gets one more "~" |
| int beyond 64 bits | `{"~i": "-1f..."}`, hex (no reader's digit limit applies) |
| NaN, infinities | `{"~f": "nan" / "inf" / "-inf"}` |
| Decimal | `{"~d": "1.50"}`, str(): digits, exponent, sign, NaN kept |
| datetime, time | `{"~dt": iso}`, `{"~t": iso}`; `[iso, fold, zone]` (see below) |
| date | `{"~da": "2024-01-02"}` |
| timedelta | `{"~td": [days, seconds, microseconds]}` |
| UUID | `{"~u": "…"}` |
| bytes, memoryview | `{"~b": base64}`, `{"~mv": base64}`: each comes back as itself |
| IPv4/IPv6 address, interface, network | `{"~ipa": …}`, `{"~ipi": …}`, `{"~ipn": …}` |
| tuple, frozenset | `{"~tu": [...]}`, `{"~fs": [...]}` |

A BlobField's value is bytes on SQLite and on PostgreSQL through psycopg 3 (which
runtime.db prefers), a memoryview through psycopg2: either comes back as it was, so a
rule sees on every process what it saw on the one that captured the change.

A time zone is kept as what it is: a fixed offset (`datetime.timezone`, in the ISO
text; a display name given to one is not kept) or a `zoneinfo.ZoneInfo` by its key (the
ISO text is then the wall time, naive); any other tzinfo is a TypeError. The list form
`[iso, fold, zone]` is used when the fold is 1, for a ZoneInfo (`zone` its key), and for
an offset with microseconds, which fromisoformat drops (`zone` the offset in µs).
"""

from __future__ import annotations

import binascii
import dataclasses
import datetime
import decimal
import ipaddress
import json
import math
import operator
import types
import typing
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson

__all__ = ["EventCodec"]

E = TypeVar("E")

VERSION = 1
_MICROSECOND = datetime.timedelta(microseconds=1)
_INT64 = range(-(2**63), 2**63)


class EventCodec(Generic[E]):
    """Encodes and decodes the events of one dataclass (runtime.realtime.events.Event,
    given by the caller: publishing sits below events and constructs none itself)."""

    def __init__(self, event_type: type[E]) -> None:
        if not dataclasses.is_dataclass(event_type):
            raise TypeError(f"{event_type!r} is not a dataclass")
        self._type = event_type
        fields = dataclasses.fields(event_type)
        self._names = tuple(field.name for field in fields)
        self._required = tuple(f.name for f in fields if _has_no_default(f))
        hints = typing.get_type_hints(event_type)
        self._accepts = {name: _accepted(hints[name]) for name in self._names}
        self._hints = {
            name: _name(h) if isinstance(h, type) else str(h) for name, h in hints.items()
        }
        self._accepts_in_order = tuple(self._accepts.values())
        # Every field's value, in order, in one call.
        self._values_of: Callable[[E], tuple[Any, ...]] = operator.attrgetter(*self._names)
        if len(self._names) == 1:
            getter = self._values_of
            self._values_of = lambda event: (getter(event),)

    def encode(self, event: E) -> bytes:
        values = self._values_of(event)
        if all(map(isinstance, values, self._accepts_in_order)):
            try:
                fields = {
                    name: value if type(value) in _AS_IS else _plain(value)
                    for name, value in zip(self._names, values, strict=True)
                }
                return _dumps([VERSION, fields])
            except (_Unsupported, RecursionError, UnicodeEncodeError):
                pass
        raise self._refusal(event)

    def _refusal(self, event: E) -> Exception:
        """Why `event` cannot be encoded, naming the field (the failure's slow path)."""
        for name in self._names:
            value = getattr(event, name)
            problem = f"cannot encode event field {name}"
            if not isinstance(value, self._accepts[name]):
                return TypeError(f"{problem}: a {_name(type(value))}, not {self._hints[name]}")
            try:
                _JSON_OUT.encode(_plain(value)).encode("utf-8")
            except _Unsupported as error:
                return TypeError(error.describe(name))
            except RecursionError:
                return ValueError(f"{problem}: nested too deeply, or in a circle")
            except UnicodeEncodeError:
                return ValueError(f"{problem}: a string holds a lone surrogate (not UTF-8)")
        raise AssertionError("the event failed to encode, and each of its fields encodes")

    def decode(self, data: bytes | bytearray | memoryview) -> E:
        try:
            document = _JSON_IN.decode(str(data, "utf-8"))
        except (ValueError, TypeError, ArithmeticError, LookupError, RecursionError) as error:
            raise ValueError(f"not an encoded event: {error}") from error
        event: E = self._type(**self._fields(document))
        return event

    def _fields(self, document: Any) -> dict[str, Any]:
        if type(document) is not list or len(document) != 2 or type(document[1]) is not dict:
            raise ValueError(f"not an encoded event: not [{VERSION}, {{fields}}]")
        version = document[0]
        fields: dict[str, Any] = document[1]
        if type(version) is not int or version != VERSION:
            raise ValueError(f"not an encoded event: format {version!r}, not {VERSION}")
        if tuple(fields) == self._names and all(
            map(isinstance, fields.values(), self._accepts_in_order)
        ):
            return fields  # as this codec writes them: every field, each of its type
        unknown = sorted(fields.keys() - self._accepts.keys())
        missing = [name for name in self._required if name not in fields]
        if unknown or missing:
            raise ValueError(f"not an encoded event: fields unknown {unknown}, missing {missing}")
        for name, value in fields.items():
            if not isinstance(value, self._accepts[name]):
                raise ValueError(f"not an encoded event: field {name} is {_name(type(value))}")
        return fields  # an event written before some field with a default existed


def _has_no_default(field: dataclasses.Field[Any]) -> bool:
    missing = dataclasses.MISSING
    return field.default is missing and field.default_factory is missing


def _accepted(hint: Any) -> tuple[type, ...]:
    """The classes a field's annotation admits, for isinstance() (Any: object)."""
    if hint is Any:
        return (object,)
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(kind for arg in typing.get_args(hint) for kind in _accepted(arg))
    if isinstance(origin, type):  # tuple[str, ...], Mapping[str, Any]: the container
        return (origin,)
    if isinstance(hint, type):
        return (hint,)
    raise TypeError(f"the event codec cannot check a field annotated {hint!r}")


# -- encoding: a value as JSON's types and tags -------------------------------------------


class _Unsupported(Exception):
    """A value of a type the codec does not carry, and where it was."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.path: list[str] = []

    def describe(self, field: str) -> str:
        where = field + "".join(reversed(self.path))
        return f"cannot encode event field {where}: {self.what}"


def _name(kind: type) -> str:
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


# Written as themselves, whatever their value (an int or a float is not: its range is
# checked by _plain).
_AS_IS = frozenset({str, bool, type(None)})


def _plain(value: Any) -> Any:
    """`value` as JSON's types, tagged where JSON has none."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return value if value in _INT64 else {"~i": format(value, "x")}
    if kind is float:
        return value if math.isfinite(value) else {"~f": repr(value)}
    if kind is dict:
        return _plain_dict(value)
    if kind is list:
        return _plain_items(value)
    write = _WRITERS.get(kind)
    if write is None:
        raise _Unsupported(f"a value of type {_name(kind)}, which the codec does not carry")
    return write(value)


def _plain_dict(value: dict[Any, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            raise _Unsupported(f"a dict key of type {_name(type(key))} (keys must be str)")
        if type(item) in _AS_IS:  # most of a record's values: no call
            plain[key] = item
            continue
        try:
            plain[key] = _plain(item)
        except _Unsupported as error:
            error.path.append(f"[{key!r}]")
            raise
    if len(plain) == 1:
        (key,) = plain
        if key.startswith("~"):  # not a tag: say so
            return {"~" + key: plain[key]}
    return plain


def _plain_items(values: Any) -> list[Any]:
    plain = []
    for index, item in enumerate(values):
        try:
            plain.append(_plain(item))
        except _Unsupported as error:
            error.path.append(f"[{index}]")
            raise
    return plain


def _clock(value: datetime.datetime | datetime.time) -> str | list[Any]:
    """A datetime or a time: its ISO text, or [ISO text, fold, zone key] when it has a
    fold or a named zone (the text then naive: the zone and fold give the offset)."""
    zone = value.tzinfo
    key: str | int | None
    if type(zone) is datetime.timezone and zone.utcoffset(None).microseconds:
        # ISO text has room for the microseconds of an offset, but fromisoformat drops
        # them (Python 3.11): the offset goes as a number of microseconds instead.
        offset = zone.utcoffset(None)
        text, key = value.replace(tzinfo=None).isoformat(), offset // _MICROSECOND
    elif zone is None or type(zone) is datetime.timezone:
        text, key = value.isoformat(), None
    elif type(zone) is zoneinfo.ZoneInfo and zone.key is not None:
        text, key = value.replace(tzinfo=None).isoformat(), zone.key
    else:
        kind = f"a {type(value).__name__} in a time zone of type {_name(type(zone))}"
        raise _Unsupported(f"{kind} (only datetime.timezone and ZoneInfo are carried)")
    return [text, value.fold, key] if value.fold or key is not None else text


def _memoryview(value: memoryview) -> dict[str, str]:
    if value.format != "B" or value.ndim != 1:
        raise _Unsupported(f"a memoryview of format {value.format!r} (only 1-D bytes, format 'B')")
    return {"~mv": _base64(value)}


def _base64(value: bytes | memoryview) -> str:
    return binascii.b2a_base64(value, newline=False).decode("ascii")


_WRITERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    decimal.Decimal: lambda value: {"~d": str(value)},
    datetime.datetime: lambda value: {"~dt": _clock(value)},
    datetime.date: lambda value: {"~da": value.isoformat()},
    datetime.time: lambda value: {"~t": _clock(value)},
    datetime.timedelta: lambda value: {"~td": [value.days, value.seconds, value.microseconds]},
    uuid.UUID: lambda value: {"~u": str(value)},
    bytes: lambda value: {"~b": _base64(value)},
    memoryview: _memoryview,
    ipaddress.IPv4Address: lambda value: {"~ipa": str(value)},
    ipaddress.IPv6Address: lambda value: {"~ipa": str(value)},
    ipaddress.IPv4Interface: lambda value: {"~ipi": str(value)},
    ipaddress.IPv6Interface: lambda value: {"~ipi": str(value)},
    ipaddress.IPv4Network: lambda value: {"~ipn": str(value)},
    ipaddress.IPv6Network: lambda value: {"~ipn": str(value)},
    tuple: lambda value: {"~tu": _plain_items(value)},
    frozenset: lambda value: {"~fs": _plain_items(value)},
}

_JSON_OUT = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
)


def _dumps(document: Any) -> bytes:
    """Compact UTF-8 JSON of JSON's types. orjson writes it in a tenth of json's time;
    what it refuses (a lone surrogate, nesting past its 255 levels) json writes, or
    raises for as the codec says (UnicodeEncodeError, RecursionError)."""
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:
        return _JSON_OUT.encode(document).encode("utf-8")


# -- decoding: tags back to values -----------------------------------------------------


def _tagged(obj: dict[str, Any]) -> Any:
    """json's object_hook: a tag's value, an escaped key unescaped, else the dict."""
    if len(obj) != 1:
        return obj
    ((key, payload),) = obj.items()
    reader = _READERS.get(key)
    if reader is not None:
        holds, read = reader
        if isinstance(payload, holds):
            return read(payload)
        raise ValueError(f"tag {key!r} holds {_name(type(payload))}")
    if not key.startswith("~"):
        return obj
    if key.startswith("~~"):
        return {key[1:]: payload}
    raise ValueError(f"unknown tag {key!r}")


def _read_clock(kind: type[datetime.datetime] | type[datetime.time]) -> Callable[[Any], Any]:
    def read(payload: Any) -> datetime.datetime | datetime.time:
        if type(payload) is str:
            return kind.fromisoformat(payload)
        text, fold, key = payload
        value = kind.fromisoformat(text)
        if key is not None:
            if value.tzinfo is not None:
                raise ValueError("a zoned time with an offset of its own")
            zone: datetime.tzinfo
            if type(key) is int:
                zone = datetime.timezone(key * _MICROSECOND)
            else:
                zone = zoneinfo.ZoneInfo(key)
            value = value.replace(tzinfo=zone)
        return value.replace(fold=fold)

    return read


def _read_float(name: str) -> float:
    if name not in ("nan", "inf", "-inf"):
        raise ValueError(f"{name!r} is not nan, inf or -inf")
    return float(name)


def _read_timedelta(parts: list[Any]) -> datetime.timedelta:
    if len(parts) != 3 or any(type(part) is not int for part in parts):
        raise ValueError("a timedelta is [days, seconds, microseconds]")
    return datetime.timedelta(*parts)


def _read_base64(text: str) -> bytes:
    return binascii.a2b_base64(text, strict_mode=True)


_READERS: dict[str, tuple[type | tuple[type, ...], Callable[[Any], Any]]] = {
    "~i": (str, lambda text: int(text, 16)),
    "~f": (str, _read_float),
    "~d": (str, decimal.Decimal),
    "~dt": ((str, list), _read_clock(datetime.datetime)),
    "~da": (str, datetime.date.fromisoformat),
    "~t": ((str, list), _read_clock(datetime.time)),
    "~td": (list, _read_timedelta),
    "~u": (str, uuid.UUID),
    "~b": (str, _read_base64),
    "~mv": (str, lambda text: memoryview(_read_base64(text))),
    "~ipa": (str, ipaddress.ip_address),
    "~ipi": (str, ipaddress.ip_interface),
    "~ipn": (str, ipaddress.ip_network),
    "~tu": (list, tuple),
    "~fs": (list, frozenset),
}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_JSON_IN = json.JSONDecoder(object_hook=_tagged, parse_constant=_no_constant)
