"""Who may see an event, and in what shape: one answer for fan-out and replay.

A read rule judges a record event on a model instance built from the event's stored
values, exactly as the records API builds one from a row, so a rule function sees the
same types on both paths. Rules are evaluated once per event per distinct user and
frames encoded once per distinct set of visible fields.

An update can move a record into or out of a reader's view: their subscriptions'
filters, or the read rule, judge it one way on the values it had and another on the
values it has (the event carries the changed fields' values from before). A reader it
leaves gets a `delete` of the record as they last saw it, one it enters a `create` of
the whole record, each with a `reason` ("filter" or "access"); `moved()` decides, for
one reader and the subscriptions of theirs the event concerns. A connection's view is
the union of those subscriptions.

A failure stays where it happened: a rule or `visible_fields()` that raises costs that
user that event (an encoder that raises, the readers of that shape); it is counted and
logged (see `Faults`), and every other reader and event goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...query import CompiledFilter
from ...rules import Rule
from .. import protocol
from ..channels import ChannelRule
from .event_records import event_record
from .expanding import EventRelated, wanted_expansion
from .frames import Shaped, custom_frame, event_frame, presence_frame, record_frame
from .registry import Filter, filter_matches

if TYPE_CHECKING:
    from ...base_model import BaseModel
    from ...expand import Expansion
    from ..channels import Channel
    from ..events import Event
    from ..stats import Faults
    from .registry import Subscription

__all__ = ["EventAccess", "Shaped", "rule_name"]

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
        "_moves",
        "_readers",
        "_record",
        "_record_before",
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
        self._moves: bool | None = None
        self._readers: dict[Any, tuple[bool, bool, tuple[str, ...]]] = {}
        self._record_before: BaseModel | None = None
        self._related: EventRelated | None = None  # read when an expand first asks

    def for_user(self, user: Any) -> Shaped:
        """The frame `user` gets and the record as they see it; (None, {}) for nothing."""
        key = user.id if user is not None else None
        shaped = self._by_user.get(key, _MISSING)
        if shaped is _MISSING:
            shaped = self._by_user[key] = self._decide(user)
        return shaped  # type: ignore[return-value]

    def with_expand(
        self,
        user: Any,
        expansion: Expansion,
        visible: Mapping[str, Any],
        moved: tuple[str, str] | None = None,
    ) -> str:
        """The frame of a reader given one (`visible`) whose subscriptions expand
        (`moved`: the action and reason of a record entering or leaving their view)."""
        if self._related is None:
            self._related = EventRelated(self.event, self._faults)
        return self._related.frame(user, expansion, visible, moved)

    def passes(self, filter: Filter, visible: Mapping[str, Any]) -> bool:
        """Whether this record event passes a subscription's filter, for a reader who
        was given a frame of it (`visible`: the record as they see it). An expression is
        judged on the typed values, as the records API's `?filter=` judges a row (dates,
        decimals); an equality object on the values as sent."""
        if isinstance(filter, CompiledFilter):
            assert self._record is not None  # built when the reader's frame was
            return filter.matches(self._record.__data__)
        return filter_matches(filter, visible)

    @property
    def moves(self) -> bool:
        """Whether this is an update that changed a value readers are judged on: one that
        may move the record into or out of someone's view (then see `moved()`)."""
        moves = self._moves
        if moves is None:
            event = self.event
            previous, values = event.previous or {}, event.values or {}
            moves = self._moves = (
                event.action == "update"
                and self._model is not None
                and any(values.get(name) != value for name, value in previous.items())
            )
        return moves

    def moved(
        self, user: Any, subscriptions: Sequence[Subscription]
    ) -> tuple[str | None, list[Subscription]]:
        """For an update that `moves`: the frame `user` gets (an update, a create or a
        delete with its reason; None for nothing) and which of `subscriptions` it
        concerns (those whose view held the record before, or holds it now)."""
        readable_before, readable_now, fields = self._reader(user)
        if not fields:
            return None, []
        before = self._before()
        values = self.event.values or {}
        concerned: list[Subscription] = []
        was = now = False
        for sub in subscriptions:
            sub_was = readable_before and _passes(sub.filter, before, fields)
            sub_now = readable_now and _passes(sub.filter, self._record_now(), fields)
            if sub_was or sub_now:
                concerned.append(sub)
                was, now = was or sub_was, now or sub_now
        moved: tuple[str, str] | None = None
        if was and now:
            frame, shown = self._shaped(fields)
        elif now:
            moved = ("create", "filter" if readable_before else "access")
            frame, shown = self._entered_or_left(*moved, fields, values)
        elif was:
            moved = ("delete", "filter" if readable_now else "access")
            frame, shown = self._entered_or_left(*moved, fields, before.__data__)
        else:
            return None, []
        if frame is not None and (expansion := wanted_expansion(concerned)):
            frame = self.with_expand(user, expansion, shown, moved)
        return frame, concerned

    def _reader(self, user: Any) -> tuple[bool, bool, tuple[str, ...]]:
        """Whether `user` may read the record as it was and as it is, and the fields
        they see (none for a rule or `visible_fields()` that failed)."""
        key = user.id if user is not None else None
        reader = self._readers.get(key)
        if reader is None:
            model = self._model
            assert model is not None
            name = rule_name(model.read_rule)
            before = self._guarded("read rule", name, self._before().readable_by, user)
            now = self._guarded("read rule", name, self._record_now().readable_by, user)
            fields = self._guarded("visible_fields", "visible_fields", model.visible_fields, user)
            reader = self._readers[key] = (bool(before), bool(now), tuple(fields or ()))
        return reader

    def _record_now(self) -> BaseModel:
        record = self._record
        if record is None:
            assert self._model is not None
            record = self._record = event_record(self._model, self.event.values or {})
        return record

    def _before(self) -> BaseModel:
        """The record as it was: its values, those the update changed as they were."""
        record = self._record_before
        if record is None:
            assert self._model is not None
            values = {**(self.event.values or {}), **(self.event.previous or {})}
            record = self._record_before = event_record(self._model, values)
        return record

    def _shaped(self, fields: tuple[str, ...]) -> Shaped:
        shaped = self._by_fields.get(fields)
        if shaped is None:
            try:
                shaped = record_frame(self.event, fields)
            except Exception as error:
                self._faults.record(self.event.collection or "-", "encode", "encoding", error)
                shaped = _NOTHING
            self._by_fields[fields] = shaped
        return shaped

    def _entered_or_left(
        self, action: str, reason: str, fields: tuple[str, ...], values: Mapping[str, Any]
    ) -> Shaped:
        key = (action, reason, *fields)
        shaped = self._by_fields.get(key)
        if shaped is None:
            record = {name: values[name] for name in fields if name in values}
            try:
                frame = protocol.encode(event_frame(self.event, record, (action, reason)))
                shaped = (frame, record)
            except Exception as error:
                self._faults.record(self.event.collection or "-", "encode", "encoding", error)
                shaped = _NOTHING
            self._by_fields[key] = shaped
        return shaped

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
        record = self._record_now()
        if not self._guarded("read rule", rule_name(model.read_rule), record.readable_by, user):
            return _NOTHING
        fields = self._guarded("visible_fields", "visible_fields", model.visible_fields, user)
        if not fields:
            return _NOTHING
        return self._shaped(tuple(fields))

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


def _passes(filter: Filter, record: BaseModel, fields: tuple[str, ...]) -> bool:
    """Whether `record` passes a subscription's filter (see `EventAccess.passes`)."""
    if filter is None:
        return True
    if isinstance(filter, CompiledFilter):
        return filter.matches(record.__data__)
    data = record.__data__
    return filter_matches(filter, {name: data.get(name) for name in fields})
