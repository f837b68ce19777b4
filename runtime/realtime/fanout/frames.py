"""The frames of events, as fan-out and replay send them (no access decisions here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import protocol

if TYPE_CHECKING:
    from ..events import Event

__all__ = ["Shaped", "custom_frame", "moved_frame", "presence_frame", "record_frame"]

# (the encoded frame, or None when this reader gets nothing; the record as they see it)
Shaped = tuple[str | None, Mapping[str, Any]]


def record_frame(event: Event, fields: tuple[str, ...]) -> Shaped:
    """The frame for readers who see `fields`; None for an update they cannot see."""
    values = event.values or {}
    visible = {name: values[name] for name in fields if name in values}
    changed = [name for name in event.changed if name in visible]
    if event.action == "update" and not changed:
        return None, visible
    frame: dict[str, Any] = {
        "type": "event",
        "id": event.id,
        "collection": event.collection,
        "topic": event.topic,
        "action": event.action,
        "record": visible,
    }
    if event.action == "update":
        frame["changed"] = changed
    return protocol.encode(frame), visible


def moved_frame(
    event: Event, action: str, reason: str, record: Mapping[str, Any]
) -> dict[str, Any]:
    """A record entering a reader's view (`create`, the whole record) or leaving it
    (`delete`, the record as they last saw it), and why: "filter" or "access"."""
    return {
        "type": "event",
        "id": event.id,
        "collection": event.collection,
        "topic": event.topic,
        "action": action,
        "record": record,
        "reason": reason,
    }


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
