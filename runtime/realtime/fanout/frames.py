"""The frames of events, as fan-out and replay send them (no access decisions here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import protocol

if TYPE_CHECKING:
    from ..events import Event

__all__ = ["Shaped", "custom_frame", "event_frame", "presence_frame", "record_frame"]

# (the encoded frame, or None when this reader gets nothing; the record as they see it)
Shaped = tuple[str | None, Mapping[str, Any]]


def record_frame(event: Event, fields: tuple[str, ...]) -> Shaped:
    """The frame for readers who see `fields`; None for an update they cannot see."""
    values = event.values or {}
    visible = {name: values[name] for name in fields if name in values}
    changed = [name for name in event.changed if name in visible]
    if event.action == "update" and not changed:
        return None, visible
    return protocol.encode(event_frame(event, visible)), visible


def event_frame(
    event: Event, record: Mapping[str, Any], moved: tuple[str, str] | None = None
) -> dict[str, Any]:
    """A record event's frame with `record` as one reader sees it. `moved`: the action
    and reason of a record an update brought into a reader's view (`create`, the whole
    record) or took out of it (`delete`, the record as they last saw it); the reason is
    "filter" or "access"."""
    frame: dict[str, Any] = {
        "type": "event",
        "id": event.id,
        "collection": event.collection,
        "topic": event.topic,
        "action": event.action if moved is None else moved[0],
        "record": record,
    }
    if moved is not None:
        frame["reason"] = moved[1]
    elif event.action == "update":
        frame["changed"] = [name for name in event.changed if name in record]
    return frame


def custom_frame(event: Event) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "event",
        "id": event.id,
        "collection": event.collection,
        "topic": event.topic,
        "action": "custom",
        "name": event.name,
        "data": event.data,
    }
    if event.user is not None:  # published from a browser: by whom
        frame["user"] = event.user
    return frame


def presence_frame(event: Event) -> dict[str, Any]:
    return {
        "type": "event",
        "id": event.id,
        "collection": event.collection,
        "topic": event.topic,
        "action": event.action,
        "user": event.user,
    }
