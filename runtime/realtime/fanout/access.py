"""Who may see an event, and in what shape: one answer for fan-out and replay.

A read rule judges a record event on a model instance built from the event's stored
values, exactly as the records API builds one from a row, so a rule function sees the
same types on both paths. Rules are evaluated once per event per distinct user and
frames encoded once per distinct set of visible fields.

A failure stays where it happened: a rule or `visible_fields()` that raises costs that
user that event (an encoder that raises, the readers of that shape); it is counted and
logged (see `Faults`), and every other reader and event goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...adapters.peewee import model_from_stored
from ...query import CompiledFilter
from ...rules import Rule
from .. import protocol
from ..channels import ChannelRule
from .expanding import EventRelated
from .registry import Filter, filter_matches

if TYPE_CHECKING:
    from ...base_model import BaseModel
    from ...expand import Expansion
    from ..channels import Channel
    from ..events import Event
    from ..stats import Faults

__all__ = ["EventAccess", "Shaped", "rule_name"]

# (the encoded frame, or None when this reader gets nothing; the record as they see it)
Shaped = tuple[str | None, Mapping[str, Any]]
_NOTHING: Shaped = (None, {})
_MISSING = object()


def rule_name(rule: Rule | ChannelRule) -> str:
    return rule if isinstance(rule, str) else getattr(rule, "__qualname__", repr(rule))


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
        "_related",
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
        self._related: EventRelated | None = None  # read when an expand first asks

    def for_user(self, user: Any) -> Shaped:
        """The frame `user` gets and the record as they see it; (None, {}) for nothing."""
        key = user.id if user is not None else None
        shaped = self._by_user.get(key, _MISSING)
        if shaped is _MISSING:
            shaped = self._by_user[key] = self._decide(user)
        return shaped  # type: ignore[return-value]

    def with_expand(self, user: Any, expansion: Expansion, visible: Mapping[str, Any]) -> str:
        """The frame of a reader given one (`visible`) whose subscriptions expand."""
        if self._related is None:
            self._related = EventRelated(self.event, self._faults)
        return self._related.frame(user, expansion, visible)

    def passes(self, filter: Filter, visible: Mapping[str, Any]) -> bool:
        """Whether this record event passes a subscription's filter, for a reader who
        was given a frame of it (`visible`: the record as they see it). An expression is
        judged on the typed values, as the records API's `?filter=` judges a row (dates,
        decimals); an equality object on the values as sent."""
        if isinstance(filter, CompiledFilter):
            assert self._record is not None  # built when the reader's frame was
            return filter.matches(self._record.__data__)
        return filter_matches(filter, visible)

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
