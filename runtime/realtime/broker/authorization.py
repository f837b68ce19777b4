"""Who may subscribe to what, decided before any event or record is sent.

A subscription by exact name (a collection, one record, a channel) needs the read rule
to let the user read something there: `forbidden` otherwise, whether it does not exist
or is not theirs to read. Wildcards are always allowed: their events are filtered per
record, as everyone's are. A snapshot needs an exact pattern of a collection and a
field to sort by that the user can see. A connection has at most `max_subscriptions`.

A filter expression is parsed and bound here, once, for the subscriber and the
collection (the records API's rules: `[query]` bounds, only fields the user sees): a bad
one is a `bad_request` with `reason: "filter"` and the `position` it went wrong at.
So is `expand`, against the foreign keys the user sees: `reason: "expand"` and `field`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ...base_model import BaseModel
from ...expand import ExpandError, Expansion, parse_expand
from ...query import FilterError, FilterLimits, compile_filter
from ..fanout.access import rule_name
from ..patterns import Pattern, PatternKey, PatternKind
from ..protocol import ErrorCode, ProtocolError, RequestId, Subscribe
from .snapshots import Snapshots, Wanted

if TYPE_CHECKING:
    from ..channels import Channel
    from ..connections.connection import Connection
    from ..fanout.registry import Filter, SubscriptionRegistry
    from ..stats import Faults

__all__ = ["Authorization"]


class Authorization:
    def __init__(
        self,
        models: Callable[[], Mapping[str, type[BaseModel]]],
        channels: Mapping[str, Channel],
        registry: SubscriptionRegistry[Connection],
        snapshots: Snapshots,
        faults: Faults,
        *,
        max_subscriptions: int,
        filter_limits: FilterLimits | None = None,
        max_expand: int = 8,
    ) -> None:
        self._models = models
        self._channels = channels  # the app's (read live: declared later, still seen)
        self._registry = registry
        self._snapshots = snapshots
        self._faults = faults
        self._max_subscriptions = max_subscriptions
        self._filter_limits = filter_limits or FilterLimits()
        self._max_expand = max_expand

    def check(
        self, conn: Connection, command: Subscribe, seen: set[PatternKey]
    ) -> tuple[Filter, Wanted | None, Expansion | None]:
        """The subscription's filter (an expression compiled), the snapshot it wants, if
        any, and its expand; a ProtocolError for a subscription refused. `seen`: the
        patterns of the same request so far."""
        pattern, request_id = command.pattern, command.request_id
        if pattern.key in seen:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "the same pattern twice in one request", request_id
            )
        registry = self._registry
        if registry.get(conn, pattern) is None and registry.count(conn) >= self._max_subscriptions:
            raise ProtocolError(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"at most {self._max_subscriptions} subscriptions per connection",
                request_id,
            )
        model = self._readable_model(conn, pattern, request_id)
        filter: Filter = (
            self._compiled(model, conn, command.filter, request_id)
            if isinstance(command.filter, str)
            else command.filter
        )
        expansion = self._expansion(model, conn, command)
        if not command.snapshot:
            return filter, None, expansion
        if model is None:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "snapshot needs a collection or record pattern", request_id
            )
        return (
            filter,
            self._snapshots.wanted(model, conn.user, command, filter, expansion),
            expansion,
        )

    def _expansion(
        self, model: type[BaseModel] | None, conn: Connection, command: Subscribe
    ) -> Expansion | None:
        if not command.expand:
            return None
        try:
            if model is None:  # a channel's or a wildcard's events have no one model's keys
                raise ExpandError("expand needs a collection or record pattern", command.expand[0])
            return parse_expand(command.expand, model, conn.user, self._max_expand)
        except ExpandError as exc:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"Cannot expand: {exc.message}.",
                command.request_id,
                reason="expand",
                field=exc.field,
            ) from None

    def _compiled(
        self, model: type[BaseModel] | None, conn: Connection, text: str, request_id: RequestId
    ) -> Filter:
        if model is None:  # a channel's or a wildcard's events have no one model's fields
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                "a filter expression needs a collection or record pattern",
                request_id,
                reason="filter",
                position=0,
            )
        try:
            return compile_filter(text, model, conn.user, self._filter_limits)
        except FilterError as exc:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"Bad filter at position {exc.position}: {exc.message}.",
                request_id,
                reason="filter",
                position=exc.position,
            ) from None

    def _readable_model(
        self, conn: Connection, pattern: Pattern, request_id: RequestId
    ) -> type[BaseModel] | None:
        """The pattern's model for exact patterns; `forbidden` if the user may not read it."""
        if pattern.kind not in (PatternKind.COLLECTION, PatternKind.RECORD):
            return None
        assert pattern.collection is not None
        channel = self._channels.get(pattern.collection)
        if channel is not None:  # no model, no records: the channel's read rule
            if pattern.kind is PatternKind.RECORD or not self._channel_readable(channel, conn):
                raise ProtocolError(
                    ErrorCode.FORBIDDEN, f"no readable channel named {channel.name!r}", request_id
                )
            return None
        model = self._models().get(pattern.collection)
        if model is None or not model.collection_readable_by(conn.user):
            raise ProtocolError(
                ErrorCode.FORBIDDEN,
                f"no readable collection named {pattern.collection!r}",
                request_id,
            )
        return model

    def _channel_readable(self, channel: Channel, conn: Connection) -> bool:
        try:
            return channel.readable_by(conn.user)
        except Exception as error:  # app code: as a rule that fails in fan-out
            self._faults.record(channel.name, "read rule", rule_name(channel.read_rule), error)
            return False
