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

    def to_dict(self) -> dict[str, Any]:
        """For backends that serialise (Redis); the id is theirs to assign."""
        out: dict[str, Any] = {"action": self.action, "collection": self.collection}
        if self.is_custom:
            out.update(name=self.name, data=self.data)
            if self.client_ids is not None:
                out["client_ids"] = sorted(self.client_ids)
            if self.user_ids is not None:
                out["user_ids"] = sorted(self.user_ids, key=str)
        else:
            out.update(record_id=self.record_id, record=self.record, changed=list(self.changed))
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], event_id: str) -> Event:
        client_ids, user_ids = data.get("client_ids"), data.get("user_ids")
        return cls(
            action=data["action"],
            collection=data.get("collection"),
            record_id=data.get("record_id"),
            record=data.get("record"),
            changed=tuple(data.get("changed") or ()),
            name=data.get("name"),
            data=data.get("data"),
            client_ids=frozenset(client_ids) if client_ids is not None else None,
            user_ids=frozenset(user_ids) if user_ids is not None else None,
            id=event_id,
        )


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
