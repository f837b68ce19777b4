"""Events: what travels from a commit or a broadcast through the backend to fan-out.

A record event carries the record's stored, typed field values (a datetime is a
datetime), hidden fields left out (but those the read rule reads, which fan-out never
sends), and an update the values its changed fields had before: read rules and filters
judge it on the values the API would read, before and after, and fan-out turns them
into JSON once per shape. A custom event carries its name, JSON-safe data and optional
targets. No I/O here.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..db import RecordChange
from ..json_values import has_lone_surrogate, json_tree, sendable_tree

__all__ = ["Event", "custom_event", "public_user", "record_event", "session_ended"]


@dataclass(frozen=True, slots=True)
class Event:
    action: str  # "create" | "update" | "delete" | "custom"
    collection: str | None
    record_id: str | None = None
    values: Mapping[str, Any] | None = None  # a record's visible-able fields, typed
    changed: tuple[str, ...] = ()
    # An update's changed fields' values before it (typed, hidden ones left out), by
    # which fan-out tells a reader whose view it enters or leaves; None when unknown.
    previous: Mapping[str, Any] | None = None
    name: str | None = None
    data: Any = None  # JSON-safe
    user: Any = None  # JSON-safe: who joined or left, or who published from a browser
    client_ids: frozenset[str] | None = None
    user_ids: frozenset[Any] | None = None
    id: str = ""  # given by the backend when published: its position's id
    # The offset of its position: events of one epoch compare by it (ids are opaque to
    # everyone else).
    seq: int = 0
    # Its publication's idempotency key, given when it is first queued: a retried
    # publish of the same event is not published twice.
    key: str = ""

    @property
    def is_custom(self) -> bool:
        return self.action == "custom"

    @property
    def is_presence(self) -> bool:
        return self.action in ("join", "leave")

    @property
    def is_control(self) -> bool:
        """For the servers, not for clients: a session that ended (see session_ended)."""
        return self.action == "session_end"

    @property
    def topic(self) -> str | None:
        """`<collection>/<record id>` for a record, the collection for a custom event."""
        if self.record_id is not None:
            return f"{self.collection}/{self.record_id}"
        return self.collection

    def published(self, event_id: str, seq: int) -> Event:
        # What dataclasses.replace does, at half its cost (once per event published):
        # every field as it is, then the two that change.
        event = Event(*_field_values(self))
        object.__setattr__(event, "id", event_id)
        object.__setattr__(event, "seq", seq)
        return event


# Each of an Event's fields, in the order its constructor takes them.
_field_values = operator.attrgetter(*(field.name for field in dataclasses.fields(Event)))


def record_event(
    change: RecordChange, collection: str, hidden: Iterable[str], key: str = ""
) -> Event | None:
    """The event for a committed change, `hidden` fields left out (those no read rule
    reads: `BaseModel.left_out_of_events()`); None for an update that wrote only those,
    which could change nothing any reader sees. `key`: its idempotency key, if any."""
    secret = set(hidden)
    changed = tuple(name for name in change.changed if name not in secret)
    if change.action == "update" and not changed:
        return None
    values = {name: value for name, value in change.data.items() if name not in secret}
    previous = None
    if change.previous is not None:
        before = change.previous
        previous = {name: before[name] for name in changed if name in before}
        if len(previous) != len(changed):
            previous = None  # not read for every field the event says changed
    return Event(change.action, collection, change.record_id, values, changed, previous, key=key)


def custom_event(
    name: str,
    data: Any,
    *,
    collection: str | None = None,
    client_ids: Iterable[str] | None = None,
    user_ids: Iterable[Any] | None = None,
    user: Any = None,
) -> Event:
    """A custom event; `data` is copied into JSON types now (ValueError if it cannot be,
    or holds text that UTF-8 cannot encode, which could reach nobody). `user` is who
    published it from a browser (their public fields), if anyone."""
    if not isinstance(name, str) or not name:
        raise ValueError("realtime_broadcast: name must be a non-empty string")
    if has_lone_surrogate(name):
        raise ValueError("realtime_broadcast: name holds a lone surrogate (like '\\ud800')")
    return Event(
        "custom",
        collection,
        name=name,
        data=sendable_tree(data, "realtime_broadcast: data"),
        client_ids=frozenset(client_ids) if client_ids is not None else None,
        user_ids=frozenset(user_ids) if user_ids is not None else None,
        user=json_tree(user),  # the server's own account of who: see protocol.encode
    )


def session_ended(token_hash: str) -> Event:
    """Every process closes that session's connections (4401) when it gets this event:
    a logout through one process ends the user's sockets on all of them."""
    return Event("session_end", None, data=token_hash)


def public_user(user: Any) -> dict[str, Any] | None:
    """The user as others may see them: their `public_dict()`, else just their id."""
    if user is None:
        return None
    public = getattr(user, "public_dict", None)
    info: dict[str, Any] = public() if callable(public) else {"id": user.id}
    return info
