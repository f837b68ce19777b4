"""Events as they travel through a backend: plain data, JSON-ready, no I/O.

A record event carries the record's non-hidden fields; who may see it, and which of its
fields, is decided per subscriber when it is fanned out. A custom event carries its
name, data and optional targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "custom_event", "record_event"]


@dataclass(frozen=True, slots=True)
class Event:
    action: str  # "create" | "update" | "delete" | "custom"
    collection: str | None
    record_id: str | None = None
    record: dict[str, Any] | None = None
    changed: tuple[str, ...] = ()
    name: str | None = None
    data: Any = None
    client_ids: frozenset[str] | None = None
    user_ids: frozenset[Any] | None = None
    id: str = ""  # given by the backend when published

    @property
    def is_custom(self) -> bool:
        return self.action == "custom"


def record_event(
    action: str, collection: str, record_id: str, record: dict[str, Any], changed: tuple[str, ...]
) -> Event:
    return Event(action, collection, record_id=record_id, record=record, changed=changed)


def custom_event(
    name: str,
    data: Any,
    *,
    collection: str | None = None,
    client_ids: frozenset[str] | None = None,
    user_ids: frozenset[Any] | None = None,
) -> Event:
    return Event(
        "custom", collection, name=name, data=data, client_ids=client_ids, user_ids=user_ids
    )
