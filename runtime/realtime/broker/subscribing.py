"""Subscribing: checked, then settled with its snapshot or replay, then live.

Subscribing awaits (a network backend reads its history over the network, a snapshot
waits for its position to be published), so live events may arrive meanwhile: the new
subscriptions hold them back, and when the history or snapshot is in, those already
covered are dropped and the rest follow the reply, as Centrifugo merges by offset. So
there is no gap and no duplicate between a snapshot or a replay and the live events.

The connection may go meanwhile too (an SSE POST subscribes beside its stream, which
can end at any time): a subscribe that resumes to find it gone registers nothing,
joins no presence, and raises ConnectionGone, so that nothing outlives the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...change_tracking import ReadsBlocked
from .. import protocol
from ..connections.connection import ConnectionGone
from ..fanout.replay import replay_frames
from ..protocol import ErrorCode, Frame, ProtocolError, Subscribe

if TYPE_CHECKING:
    from ..connections.connection import Connection
    from ..events import Event
    from ..fanout.access import EventAccess
    from ..fanout.registry import Subscription, SubscriptionRegistry
    from ..patterns import Pattern, PatternKey
    from ..publishing.backends import Backend
    from ..stats import Faults
    from .authorization import Authorization
    from .presence import Presence
    from .snapshots import Snapshots, Wanted

__all__ = ["REPLY_SHARE", "Subscribing"]

log = logging.getLogger("runtime.realtime")

# What one subscribe request's snapshots and replay may add to a connection's queue,
# as a share of its budget (`send_queue_bytes`): the rest is for live events.
REPLY_SHARE = 0.5
# Seconds after which a client may ask again for a snapshot refused as `unavailable`.
SNAPSHOT_RETRY_AFTER = 1.0


@dataclass(slots=True)
class Pending:
    """A subscribe command that passed the checks, while it settles."""

    index: int  # of its reply
    command: Subscribe
    wanted: Wanted | None  # its snapshot, if it asked for one
    sub: Subscription
    cutoff: int = 0  # events up to here are covered by its snapshot or replay
    recovered: bool = False  # its `since` was replayed
    live_from: int | None = None  # when not the cutoff: after a replay, `since`
    snapshot: dict[str, Any] | None = None  # its snapshot's body, once read


class Subscribing:
    def __init__(
        self,
        registry: SubscriptionRegistry[Connection],
        authorization: Authorization,
        snapshots: Snapshots,
        presence: Presence,
        backend: Backend,
        access: Callable[[Event], EventAccess],
        faults: Faults,
        *,
        replay_limit: int,
        delivered: Callable[[], int],
    ) -> None:
        self._registry = registry
        self._authorization = authorization
        self._snapshots = snapshots
        self._presence = presence
        self._backend = backend
        self._access = access
        self._faults = faults
        self._replay_limit = replay_limit
        self._delivered = delivered  # the order number of the last event delivered

    async def subscribe(
        self,
        conn: Connection,
        commands: Sequence[Subscribe | ProtocolError],
        *,
        replies_on_stream: bool = True,
    ) -> list[Frame]:
        """Subscribe to several patterns at once; returns a reply per command, in order
        (`subscribed`, or `error` for a refused one or a ProtocolError given in its
        place). With `replies_on_stream` the replies are queued on the connection too;
        the replay and the events held meanwhile always are, after them.
        ConnectionGone if the connection is gone before they go live.
        """
        async with conn.command_lock:
            _check_open(conn)  # it may have gone while this waited for the lock
            replies, pending = self._accept(conn, commands)
            try:
                frames = await self._settle(conn, pending, replies)
                _check_open(conn)  # or while this settled: its presence would stay
            except BaseException:
                self._abandon(conn, pending)
                raise
            # Still without awaiting since the subscriptions went live: nothing can come
            # between these frames, and live events follow them (a join of theirs too).
            for item in pending:
                self._presence.join(conn, item.command.pattern)
            if replies_on_stream:
                for reply in replies:
                    conn.send(protocol.encode(reply))
            for frame in frames:
                conn.send(frame)
            return replies

    def _abandon(self, conn: Connection, pending: list[Pending]) -> None:
        """A subscribe that will not be answered: what it registered goes (all of it if
        the connection is gone), and so do the events held back for it."""
        for item in pending:
            if item.sub.held or conn.gone:
                self._registry.discard(conn, item.command.pattern)
        conn.take_held()

    def unsubscribe(self, conn: Connection, pattern: Pattern) -> None:
        self._registry.discard(conn, pattern)
        self._presence.leave(conn, pattern)

    # -- checking ---------------------------------------------------------------------

    def _accept(
        self, conn: Connection, commands: Sequence[Subscribe | ProtocolError]
    ) -> tuple[list[Frame], list[Pending]]:
        """A reply for each command refused, a place for the others' (once settled);
        the others registered, holding their events back."""
        replies: list[Frame] = []
        pending: list[Pending] = []
        seen: set[PatternKey] = set()
        for command in commands:
            accepted = self._accept_one(conn, command, seen, len(replies))
            if isinstance(accepted, Pending):
                pending.append(accepted)
                replies.append({})  # the `subscribed` reply, once settled
            else:
                replies.append(accepted)
        return replies, pending

    def _accept_one(
        self,
        conn: Connection,
        command: Subscribe | ProtocolError,
        seen: set[PatternKey],
        index: int,
    ) -> Pending | Frame:
        if isinstance(command, ProtocolError):
            return protocol.error(command.request_id, command.code, command.message)
        try:
            filter, wanted, expand = self._authorization.check(conn, command, seen)
        except ProtocolError as error:
            return protocol.error(error.request_id, error.code, error.message, **error.extra)
        except Exception as error:  # app code (visible_fields, say): this one fails
            collection = command.pattern.collection or "-"
            self._faults.record(collection, "subscribe", "visible_fields", error)
            message = "this subscription could not be checked"
            return protocol.error(command.request_id, "forbidden", message)
        seen.add(command.pattern.key)
        registry = self._registry
        delivered = self._delivered()
        registry.add(conn, command.pattern, filter, live_from=delivered, held=True, expand=expand)
        sub = registry.get(conn, command.pattern)
        assert sub is not None
        return Pending(index, command, wanted, sub)

    # -- settling ---------------------------------------------------------------------

    async def _settle(
        self, conn: Connection, pending: list[Pending], replies: list[Frame]
    ) -> list[str]:
        """Take the snapshots and read the history for held subscriptions, then let them
        go live; returns the replayed and held-back events to send after the replies.
        Subscriptions whose snapshot cannot be read now leave `pending`."""
        registered = self._delivered()
        budget = int(conn.max_queue_bytes * REPLY_SHARE)
        budget = await self._take_snapshots(conn, pending, replies, budget)
        for item in pending:
            item.cutoff = registered
            if item.snapshot is not None:
                item.cutoff = item.snapshot.pop("seq")
        resumed = await self._read_histories(pending)
        # From here on nothing awaits: the subscriptions go live, and the events they
        # held back are sent unless the snapshot or the replay covers them already.
        frames = self._replay(conn, resumed, budget)
        cutoffs: dict[int, int] = {}
        for item in pending:
            cutoffs[id(item.sub)] = item.cutoff
            self._go_live(item, replies)
        for seq, frame, subs in conn.take_held():
            if any(seq > cutoffs.get(id(sub), seq) for sub in subs):
                frames.append(frame)
        return frames

    async def _take_snapshots(
        self, conn: Connection, pending: list[Pending], replies: list[Frame], budget: int
    ) -> int:
        """Each snapshot subscription's body (`item.snapshot`); what is left of the
        budget. A locked table refuses them all (the client asks again after
        retry_after) and settles the others."""
        wanting = [item for item in pending if item.wanted is not None]
        if not wanting:
            return budget
        try:
            bodies, budget = await self._snapshots.take(
                conn.user, [item.wanted for item in wanting if item.wanted is not None], budget
            )
        except ReadsBlocked as blocked:
            log.warning("snapshot refused for now: %s", blocked)
            message = "a table of this snapshot is locked; try again"
            for item in wanting:
                self._registry.discard(conn, item.command.pattern)
                pending.remove(item)
                replies[item.index] = protocol.error(
                    item.command.request_id, ErrorCode.UNAVAILABLE, message, SNAPSHOT_RETRY_AFTER
                )
            return budget
        for item, body in zip(wanting, bodies, strict=True):
            item.snapshot = body
        return budget

    async def _read_histories(self, pending: list[Pending]) -> list[tuple[Pending, list[Event]]]:
        """The missed events of each subscription resumed with `since` (and not with a
        snapshot), where the history still has them all."""
        resumed: list[tuple[Pending, list[Event]]] = []
        for item in pending:
            since = item.command.since
            if item.snapshot is not None or since is None:
                continue
            events = await self._backend.read_after(since, self._replay_limit)
            if events is not None:
                item.recovered = True
                if events:
                    resumed.append((item, events))
        return resumed

    def _replay(
        self, conn: Connection, resumed: list[tuple[Pending, list[Event]]], budget: int
    ) -> list[str]:
        """The frames of the missed events, each once; none, and `recovered` false, if
        they would take more than `budget` (the client must refetch instead)."""
        if not resumed:
            return []
        others = [s for s in self._registry.subscriptions_of(conn) if not s.held]
        subs = [(item.sub, events) for item, events in resumed]
        frames = replay_frames(conn, subs, others, self._access, budget)
        if frames is None:
            for item, _ in resumed:
                item.recovered = False
            return []
        for item, events in resumed:
            item.cutoff = events[-1].seq
            item.live_from = events[0].seq - 1  # it has every event after `since`
        return frames

    def _go_live(self, item: Pending, replies: list[Frame]) -> None:
        sub, command = item.sub, item.command
        sub.held = False
        sub.live_from = item.cutoff if item.live_from is None else item.live_from
        topic = self._presence.topic_of(command.pattern)
        replies[item.index] = protocol.subscribed(
            command.request_id,
            command.pattern.text,
            item.recovered,
            item.snapshot,
            self._presence.who(topic) if topic is not None else None,
        )


def _check_open(conn: Connection) -> None:
    if conn.gone:
        raise ConnectionGone(conn.id)
