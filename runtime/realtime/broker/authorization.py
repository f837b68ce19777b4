"""Who may subscribe to what, decided before any event or record is sent.

A subscription by exact name (a collection, one record, a channel) needs the read rule
to let the user read something there: `forbidden` otherwise, whether it does not exist
or is not theirs to read. Wildcards are always allowed: their events are filtered per
record, as everyone's are. A snapshot needs an exact pattern of a collection and a
field to sort by that the user can see. A connection has at most `max_subscriptions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from ...base_model import BaseModel
from ..fanout.access import rule_name
from ..patterns import Pattern, PatternKey, PatternKind
from ..protocol import ErrorCode, ProtocolError, RequestId, Subscribe
from .snapshots import Snapshots, Wanted

if TYPE_CHECKING:
    from ..channels import Channel
    from ..connections.connection import Connection
    from ..fanout.registry import SubscriptionRegistry
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
    ) -> None:
        self._models = models
        self._channels = channels  # the app's (read live: declared later, still seen)
        self._registry = registry
        self._snapshots = snapshots
        self._faults = faults
        self._max_subscriptions = max_subscriptions

    def check(
        self, conn: Connection, command: Subscribe, seen: set[PatternKey]
    ) -> tuple[type[BaseModel] | None, Wanted | None]:
        """The pattern's model (exact patterns) and the snapshot it wants, if any; a
        ProtocolError for a subscription refused. `seen`: the patterns of the same
        request so far."""
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
        if not command.snapshot:
            return model, None
        if model is None:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "snapshot needs a collection or record pattern", request_id
            )
        return model, self._snapshots.wanted(model, conn.user, command)

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
