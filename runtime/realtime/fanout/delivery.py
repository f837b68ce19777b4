"""Fan-out (the hot path): one published event to the send queues of those who get it.

Index lookup (the registry), then the access decision and the frame (`access`, once per
distinct user and once per visible shape), then each connection's bounded queue. Plain
synchronous code on the event loop's thread, no I/O, and nothing in it can stop the
loop over events: app code that fails (a rule, a filter) costs one reader one event, and
a connection whose queue fails is closed (1011); the others get the event all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .access import EventAccess
from .expanding import wanted_expansion
from .registry import merge_buckets

if TYPE_CHECKING:
    from ...base_model import BaseModel
    from ..channels import Channel
    from ..connections.connection import Connection
    from ..connections.index import ConnectionIndex
    from ..events import Event
    from ..stats import DeliveryStats, Faults
    from .registry import Subscription, SubscriptionRegistry

__all__ = ["Fanout", "is_target"]


class Fanout:
    def __init__(
        self,
        registry: SubscriptionRegistry[Connection],
        connections: ConnectionIndex,
        models: Callable[[], Mapping[str, type[BaseModel]]],
        stats: DeliveryStats,
        faults: Faults,
        channels: Mapping[str, Channel],
    ) -> None:
        self._registry = registry
        self._connections = connections
        self._models = models
        self._channels = channels
        self.stats = stats
        self.faults = faults

    def access(self, event: Event) -> EventAccess:
        model = channel = None
        if event.collection is not None:
            model = self._models().get(event.collection)
            if model is None:
                channel = self._channels.get(event.collection)
        return EventAccess(event, model, self.faults, channel)

    def deliver(self, event: Event) -> None:
        self.stats.published += 1
        if event.collection is None:  # custom, no collection: subscriptions play no part
            frame, _ = self.access(event).for_user(None)
            assert frame is not None
            for conn in self._global_targets(event):
                self._send(conn, frame)
            return
        buckets = self._registry.buckets(event.collection, event.record_id)
        if not buckets:
            return
        access = self.access(event)
        # The common case, one bucket (everyone on `messages`), needs no merging: a
        # connection is in a bucket once.
        if len(buckets) == 1:
            if event.record_id is not None and not event.is_custom and not access.moves:
                self._deliver_plainly(buckets[0], event, access)
                return
            for conn, sub in buckets[0].items():
                self._deliver_to(conn, event, access, (sub,))
        else:
            for conn, subs in merge_buckets(buckets).items():
                self._deliver_to(conn, event, access, subs)

    def _deliver_plainly(
        self, bucket: Mapping[Connection, Subscription], event: Event, access: EventAccess
    ) -> None:
        """What `_deliver_to` does, in one loop, for the bulk of a busy collection's
        readers: a record event that moves the record into or out of no view, to a
        subscription with no filter, not held back (with its expand, if it has one).
        Any other subscription takes `_deliver_to`."""
        for_user = access.for_user
        delivered = dropped = 0
        for conn, sub in bucket.items():
            if sub.filter is not None or sub.held:
                self._deliver_to(conn, event, access, (sub,))
                continue
            try:
                frame, visible = for_user(conn.user)
                if frame is not None and sub.expand is not None:
                    frame = access.with_expand(conn.user, sub.expand, visible)
            except Exception as error:  # a read rule: that reader loses that event only
                assert event.collection is not None
                self.faults.record(event.collection, "filter", "filter", error)
                continue
            if frame is None:
                continue
            try:  # what _queued does, inline: this is once per reader
                taken = conn.send(frame)
            except Exception as error:
                conn.fail("queue", error)
                taken = False
            if taken:
                delivered += 1
            else:
                dropped += 1
        self.stats.delivered += delivered
        self.stats.dropped += dropped

    def _deliver_to(
        self,
        conn: Connection,
        event: Event,
        access: EventAccess,
        subscriptions: Sequence[Subscription],
    ) -> None:
        collection_level = event.record_id is None  # custom, join, leave: no record
        try:
            if event.is_custom and not is_target(event, conn):
                return
            if not collection_level and access.moves:  # into or out of some views
                frame, concerned = access.moved(conn.user, subscriptions)
                if frame is not None:
                    self._route(conn, event, access, frame, None, concerned)
                return
            frame, visible = access.for_user(conn.user)
            if frame is not None:
                shown = None if collection_level else visible
                if shown is not None and (expand := wanted_expansion(subscriptions)):
                    frame = access.with_expand(conn.user, expand, shown)
                self._route(conn, event, access, frame, shown, subscriptions)
        except Exception as error:  # a filter, say: that reader loses that event only
            assert event.collection is not None
            self.faults.record(event.collection, "filter", "filter", error)

    def _route(
        self,
        conn: Connection,
        event: Event,
        access: EventAccess,
        frame: str,
        visible: Mapping[str, Any] | None,
        subscriptions: Sequence[Subscription],
    ) -> None:
        """Send to `conn` if a live subscription wants it; hold it back if only
        subscriptions under way do (the subscribe will merge it). `visible` None: the
        subscriptions all want it (no record, or judged already)."""
        held: list[Subscription] = []
        for sub in subscriptions:
            # No filter (the common case) costs one test.
            if sub.filter is None or visible is None or access.passes(sub.filter, visible):
                if not sub.held:
                    self._send(conn, frame)
                    return
                held.append(sub)
        # A join or leave is not held back: the presence list a subscription gets when it
        # goes live already counts it.
        if held and not event.is_presence and not self._hold(conn, event, frame, held):
            self.stats.dropped += 1

    def _global_targets(self, event: Event) -> Iterable[Connection]:
        if event.client_ids is None and event.user_ids is None:
            return self._connections  # every connection
        return self._connections.targets(
            event.client_ids or frozenset(), event.user_ids or frozenset()
        )

    def _send(self, conn: Connection, frame: str) -> None:
        if _queued(conn, frame):
            self.stats.delivered += 1
        else:
            self.stats.dropped += 1

    def _hold(self, conn: Connection, event: Event, frame: str, held: list[Subscription]) -> bool:
        try:
            return conn.hold((event.seq, frame, tuple(held)))
        except Exception as error:  # that connection's alone
            conn.fail("queue", error)
            return False


def _queued(conn: Connection, frame: str) -> bool:
    """Whether `conn` took the frame; a connection whose queue raises is closed (1011),
    that connection's failure alone."""
    try:
        return conn.send(frame)
    except Exception as error:
        conn.fail("queue", error)
        return False


def is_target(event: Event, conn: Connection) -> bool:
    """Whether a custom event's client and user targets (if any) include `conn`."""
    if event.client_ids is None and event.user_ids is None:
        return True
    return conn.id in (event.client_ids or ()) or conn.user_id in (event.user_ids or ())
