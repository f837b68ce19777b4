"""Who may see an event, and in what shape: one answer for fan-out, replay and snapshots.

A read rule judges a record event on a model instance built from the event's stored
values, exactly as the records API builds one from a row, so a rule function sees the
same types on both paths. Rules are evaluated once per event per distinct user and
frames encoded once per distinct set of visible fields.

A failure stays where it happened: a rule or `visible_fields()` that raises costs that
user that event (an encoder that raises, the readers of that shape); it is counted and
logged (see `Faults`), and every other reader and event goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..adapters.peewee import model_from_stored
from ..base_model import BaseModel
from ..rules import Rule
from . import protocol
from .channels import Channel, ChannelRule
from .events import Event
from .patterns import Pattern, PatternKind
from .registry import filter_matches

__all__ = ["EventAccess", "Faults", "Shaped", "rule_name", "snapshot_order", "snapshot_records"]

log = logging.getLogger("runtime.realtime")

# (the encoded frame, or None when this reader gets nothing; the record as they see it)
Shaped = tuple[str | None, Mapping[str, Any]]
_NOTHING: Shaped = (None, {})
# A snapshot reads at most this many rows per record it may return (rows the reader may
# not see, or that the filter drops, are read and skipped): its work is bounded.
SCAN_FACTOR = 10
_MISSING = object()


def rule_name(rule: Rule | ChannelRule) -> str:
    return rule if isinstance(rule, str) else getattr(rule, "__qualname__", repr(rule))


class Faults:
    """Failures of app code met while delivering: counted per collection and stage, and
    logged with a traceback the first time, then at most once a minute per kind."""

    LOG_INTERVAL = 60.0

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self._logged_at: dict[tuple[str, str, str], float] = {}

    def record(self, collection: str, stage: str, culprit: str, error: BaseException) -> None:
        key = (collection, stage)
        self.counts[key] = self.counts.get(key, 0) + 1
        kind = (collection, stage, culprit)
        now = time.monotonic()
        last = self._logged_at.get(kind)
        if last is None or now - last >= self.LOG_INTERVAL:
            self._logged_at[kind] = now
            log.error(
                "realtime: %s of collection %r raised %s (%d so far); that reader does not "
                "get that event",
                culprit,
                collection,
                type(error).__name__,
                self.counts[key],
                exc_info=error if last is None else None,
            )


class EventAccess:
    """One event's access decisions and frames, computed lazily and cached."""

    __slots__ = (
        "_by_fields",
        "_by_user",
        "_channel",
        "_faults",
        "_frame",
        "_model",
        "_record",
        "event",
    )

    def __init__(
        self,
        event: Event,
        model: type[BaseModel] | None,
        faults: Faults,
        channel: Channel | None = None,
    ) -> None:
        self.event = event
        self._model = model
        self._channel = channel
        self._faults = faults
        self._by_user: dict[Any, Shaped] = {}
        self._by_fields: dict[tuple[str, ...], Shaped] = {}
        self._record: BaseModel | None = None
        self._frame: str | None = None

    def for_user(self, user: Any) -> Shaped:
        """The frame `user` gets and the record as they see it; (None, {}) for nothing."""
        key = user.id if user is not None else None
        shaped = self._by_user.get(key, _MISSING)
        if shaped is _MISSING:
            shaped = self._by_user[key] = self._decide(user)
        return shaped  # type: ignore[return-value]

    def _decide(self, user: Any) -> Shaped:
        model, event = self._model, self.event
        if event.record_id is None:  # custom, join or leave: for the collection's readers
            if event.collection is not None and not self._collection_readable(user):
                return _NOTHING
            if self._frame is None:
                frame = presence_frame(event) if event.is_presence else custom_frame(event)
                self._frame = protocol.encode(frame)
            return self._frame, {}
        if model is None:
            return _NOTHING
        record = self._record
        if record is None:
            record = self._record = model_from_stored(model, event.values or {})
        if not self._guarded("read rule", rule_name(model.read_rule), record.readable_by, user):
            return _NOTHING
        fields = self._guarded("visible_fields", "visible_fields", model.visible_fields, user)
        if not fields:
            return _NOTHING
        shaped = self._by_fields.get(fields)
        if shaped is None:
            try:
                shaped = record_frame(event, fields)
            except Exception as error:
                self._faults.record(model.collection_name(), "encode", "encoding", error)
                shaped = _NOTHING
            self._by_fields[fields] = shaped
        return shaped

    def _collection_readable(self, user: Any) -> bool:
        """Whether `user` may hear collection-level events of the event's collection or
        channel (none of an unknown one)."""
        check: Callable[[Any], bool]
        rule: Rule | ChannelRule
        if self._model is not None:
            check, rule = self._model.collection_readable_by, self._model.read_rule
        elif self._channel is not None:
            check, rule = self._channel.readable_by, self._channel.read_rule
        else:
            return False
        return bool(self._guarded("read rule", rule_name(rule), check, user))

    def _guarded(self, stage: str, culprit: str, check: Callable[[Any], Any], user: Any) -> Any:
        try:
            return check(user)
        except Exception as error:
            self._faults.record(self.event.collection or "-", stage, culprit, error)
            return None


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


def snapshot_records(
    model: type[BaseModel],
    user: Any,
    pattern: Pattern,
    filter: Mapping[str, Any] | None,
    *,
    order: list[Any],
    limit: int,
    max_chars: int,
    faults: Faults,
) -> tuple[list[dict[str, Any]], bool, int]:
    """The records `user` may see now, as they see them, in `order`; whether that was
    all of them; and the characters they take encoded. At most `limit` records and
    `max_chars` characters, reading at most SCAN_FACTOR rows per record returned."""
    query = model.readable_query(user)
    if pattern.kind is PatternKind.RECORD:
        query = query.where(model._meta.primary_key == pattern.record_id)
    scan_limit = limit * SCAN_FACTOR
    records: list[dict[str, Any]] = []
    used = 0
    for scanned, record in enumerate(query.order_by(*order).limit(scan_limit + 1).iterator()):
        if scanned == scan_limit or len(records) == limit:
            return records, False, used
        try:
            visible = record.visible_to(user)
        except Exception as error:
            faults.record(model.collection_name(), "read rule", rule_name(model.read_rule), error)
            continue
        if visible is None or not filter_matches(filter, visible):
            continue
        size = len(protocol.encode(visible)) + 1
        if used + size > max_chars:
            return records, False, used
        records.append(visible)
        used += size
    return records, True, used


def snapshot_order(
    model: type[BaseModel], user: Any, sort: str | None, request_id: protocol.RequestId
) -> tuple[Any, str]:
    """ORDER BY for a snapshot, and the order as text for the reply: the requested field
    (one the user can see), newest first by default; the primary key breaks ties."""
    pk = model._meta.primary_key
    sort = sort or f"-{pk.name}"
    name, descending = sort.lstrip("-"), sort.startswith("-")
    if name not in model.visible_fields(user):
        raise protocol.ProtocolError(
            protocol.ErrorCode.BAD_REQUEST, f"cannot sort a snapshot by {name!r}", request_id
        )
    field = model._meta.fields[name]
    tiebreak = pk.desc() if descending else pk.asc()
    if field is pk:
        return [tiebreak], sort
    return [field.desc() if descending else field.asc(), tiebreak], sort
