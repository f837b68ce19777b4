"""Record events that carry their related records (`expand`), for fan-out and replay.

The related records are read once per event, when the first reader whose subscriptions
ask for them is served: one `WHERE key IN (…)` per related model, on the event loop,
like the records API's reads. They are read here rather than where the event is made
so that a write nobody expands costs nothing, and so that a cluster's processes each
read their own database (an event from another process carries only its own record).
A related record gone by then (deleted, or a key that names nothing) is absent from
`expand`, as in the records API.

Each related record is shown as its own rules let each reader see it, and frames are
encoded once per distinct shape (the record's visible fields and each related
record's), so that fan-out costs what it costs without expand plus a dictionary lookup
per reader. The copy is as of the event's delivery: a later change to the related
record is an event of its own collection, not of the records that point at it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import peewee

from ...expand import Expansion, read_related, related_shape, shows_public
from .. import protocol
from .frames import event_frame

if TYPE_CHECKING:
    from ..events import Event
    from ..stats import Faults
    from .registry import Subscription

__all__ = ["EventRelated", "wanted_expansion"]

_PUBLIC = "public"  # the shape of a runtime user: the same for every reader


def wanted_expansion(subscriptions: Sequence[Subscription]) -> Expansion | None:
    """What one frame of an event carries for a connection: the union of the expands of
    its subscriptions the event reaches (None, the common case, for none)."""
    found: Expansion | None = None
    for sub in subscriptions:
        if sub.expand is None:
            continue
        if found is None:
            found = sub.expand
        elif sub.expand.names != found.names:  # (Peewee's fields make == an expression)
            fields = {field.name: field for field in (*found.fields, *sub.expand.fields)}
            found = Expansion(tuple(fields.values()))
    return found


class EventRelated:
    """One record event's related records, read once, and its frames with them."""

    __slots__ = (
        "_alike",
        "_by_user",
        "_event",
        "_faults",
        "_frames",
        "_records",
        "_shapes",
        "_user_keys",
    )

    def __init__(self, event: Event, faults: Faults) -> None:
        self._event = event
        self._faults = faults
        # (field name, its value) -> the record it names: an update that moved a record
        # out of a view is shown as it was, its keys as they were.
        self._records: dict[tuple[str, Any], peewee.Model | None] = {}
        self._user_keys: dict[tuple[Any, str, Any], Any] = {}  # (user, field, value) -> shape
        self._shapes: dict[tuple[str, Any, Any], dict[str, Any] | None] = {}
        self._frames: dict[tuple[Any, ...], str] = {}
        # (user, names, moved) -> frame: the common case (many readers alike) is one lookup.
        self._by_user: dict[tuple[Any, ...], str] = {}
        self._alike: dict[tuple[Any, ...], str] = {}  # (id(visible), names, moved) -> frame

    def frame(
        self,
        user: Any,
        expansion: Expansion,
        visible: Mapping[str, Any],
        moved: tuple[str, str] | None = None,
    ) -> str:
        """The event's frame for `user`, who sees the record as `visible`, with `expand`;
        `moved`: the (action, reason) of a record entering or leaving their view."""
        # Readers given the same record (`visible` is one object per shape for the
        # event's life) whose related records show alike to all (users, or none found)
        # share one frame: one lookup each, whoever they are.
        alike = (id(visible), expansion.names, moved)
        known = self._alike.get(alike)
        if known is not None:
            return known
        mine = (user.id if user is not None else None, expansion.names, moved)
        known = self._by_user.get(mine)
        if known is None:
            known = self._by_user[mine] = self._frame(user, expansion, visible, moved)
            if self._shown_alike(expansion, visible):
                self._alike[alike] = known
        return known

    def _shown_alike(self, expansion: Expansion, visible: Mapping[str, Any]) -> bool:
        """Whether the related records of `visible` show the same to every reader."""
        for name in expansion.names:
            record = self._records[(name, visible.get(name))]
            if record is not None and not shows_public(record):
                return False
        return True

    def _frame(
        self,
        user: Any,
        expansion: Expansion,
        visible: Mapping[str, Any],
        moved: tuple[str, str] | None,
    ) -> str:
        self._read(expansion, visible)
        shapes = tuple(
            (name, visible.get(name), self._shape_key(user, name, visible.get(name)))
            for name in expansion.names
        )
        key = (tuple(visible), shapes, moved)
        frame = self._frames.get(key)
        if frame is None:
            frame = self._frames[key] = self._encode(visible, shapes, user, moved)
        return frame

    def _read(self, expansion: Expansion, values: Mapping[str, Any]) -> None:
        missing = [
            field
            for field in expansion.fields
            if (field.name, values.get(field.name)) not in self._records
        ]
        if not missing:
            return
        try:
            related = read_related(Expansion(tuple(missing)), [values])
        except Exception as error:  # the database: this event goes without them
            self._faults.record(self._event.collection or "-", "expand", "read", error)
            related = {field.name: {} for field in missing}
        for field in missing:
            value = values.get(field.name)
            self._records[(field.name, value)] = related[field.name].get(value)

    def _shape_key(self, user: Any, name: str, value: Any) -> Any:
        """What tells apart the shapes of one related record: a user's public fields are
        everyone's; another record's depend on its read rule and visible fields."""
        record = self._records[(name, value)]
        if record is None:
            return None
        if shows_public(record):
            return _PUBLIC  # the runtime's users: shown alike to every reader
        memo = (user.id if user is not None else None, name, value)
        if memo not in self._user_keys:
            try:
                readable = record.readable_by(user)
                key = record.visible_fields(user) if readable else None
            except Exception as error:  # app code: that record is absent for that reader
                self._faults.record(self._event.collection or "-", "expand", name, error)
                key = None
            self._user_keys[memo] = key
        return self._user_keys[memo]

    def _encode(
        self,
        visible: Mapping[str, Any],
        shapes: tuple[Any, ...],
        user: Any,
        moved: tuple[str, str] | None,
    ) -> str:
        expand: dict[str, Any] = {}
        for name, value, key in shapes:
            if key is None:
                continue
            shape = self._shapes.get((name, value, key))
            if shape is None:
                record = self._records[(name, value)]
                assert record is not None
                shape = self._shapes[(name, value, key)] = related_shape(record, user)
            if shape is not None:
                expand[name] = shape
        return protocol.encode(event_frame(self._event, {**visible, "expand": expand}, moved))
