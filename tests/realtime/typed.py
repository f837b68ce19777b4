"""Sameness in value and in type, all the way down: what the event codec promises."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import math
import zoneinfo
from typing import Any

from runtime.realtime.events import Event

__all__ = ["same", "same_event"]


def same(a: Any, b: Any) -> bool:
    """Equal in value and in type all the way down: NaN is NaN, -0.0 is not 0.0, a
    Decimal's exponent counts, and a datetime's or time's zone and fold."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, decimal.Decimal):
        return a.as_tuple() == b.as_tuple()
    if isinstance(a, dt.datetime | dt.time):
        return (a.replace(tzinfo=None), a.fold, _zone(a.tzinfo)) == (
            b.replace(tzinfo=None),
            b.fold,
            _zone(b.tzinfo),
        )
    if isinstance(a, memoryview):
        return (a.format, a.tobytes()) == (b.format, b.tobytes())
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, frozenset):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    return bool(a == b)


def _zone(zone: dt.tzinfo | None) -> object:
    if isinstance(zone, zoneinfo.ZoneInfo):
        return ("zoneinfo", zone.key)
    return (type(zone), zone)


def same_event(a: Event, b: Event) -> bool:
    return type(a) is type(b) and all(
        same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(Event)
    )
