"""The broker: connections, their subscriptions, and the events they receive.

It ties the pipeline's stages together (see `runtime/realtime/`): the publisher hands
events to the backend in commit order, the backend delivers them back in its order, and
fan-out fills each connection's bounded queue. Here: who is connected, subscribing
(authorization, snapshots, resuming), and publishing.

Subscribing awaits (a network backend reads its history over the network, a snapshot
waits for its position to be published), so live events may arrive meanwhile: the new
subscriptions hold them back, and when the history or snapshot is in, those already
covered are dropped and the rest follow the reply, as Centrifugo merges by offset. So
there is no gap and no duplicate between a snapshot or a replay and the live events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base_model import BaseModel
from .change_tracking import ReadsBlocked
from .json_values import json_tree
from .realtime import protocol
from .realtime.broker.presence import Presence
from .realtime.channels import Channel
from .realtime.connections.connection import TOO_SLOW_REASON, Connection
from .realtime.connections.flusher import Flusher
from .realtime.connections.index import ConnectionIndex
from .realtime.events import Event, public_user
from .realtime.fanout.access import Faults, rule_name, snapshot_order, snapshot_records
from .realtime.fanout.delivery import Fanout
from .realtime.fanout.registry import Subscription, SubscriptionRegistry
from .realtime.fanout.replay import replay_frames
from .realtime.patterns import Pattern, PatternKind
from .realtime.protocol import CloseCode, ErrorCode, Frame, ProtocolError, Subscribe
from .realtime.publishing.backends import Backend
from .realtime.publishing.publisher import Publisher
from .realtime.stats import DeliveryStats
from .realtime.supervisor import supervise

__all__ = ["Broker"]

# What one subscribe request's snapshots and replay may add to a connection's queue,
# as a share of its budget (`send_queue_bytes`): the rest is for live events.
REPLY_SHARE = 0.5
# Seconds after which a client may ask again for a snapshot refused as `unavailable`.
SNAPSHOT_RETRY_AFTER = 1.0

log = logging.getLogger("runtime.realtime")


class Broker:
    def __init__(
        self,
        backend: Backend,
        models: Callable[[], Mapping[str, type[BaseModel]]],
        *,
        max_subscriptions: int = 100,
        snapshot_limit: int = 500,
        replay_limit: int = 1000,
        max_pending: int = 100_000,
        heartbeat: float = 25.0,
        heartbeat_timeout: float = 60.0,
        channels: Mapping[str, Channel] | None = None,
        presence_topics: Collection[str] | None = None,
    ) -> None:
        self.backend = backend
        self._models = models
        self.max_subscriptions = max_subscriptions
        self.snapshot_limit = snapshot_limit
        self.replay_limit = replay_limit
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        # The app's (the Realtime extension's), read live: declared later, still seen.
        self.channels: Mapping[str, Channel] = channels if channels is not None else {}
        self.presence_topics: Collection[str] = (
            presence_topics if presence_topics is not None else set()
        )
        self.presence = Presence()
        self.registry: SubscriptionRegistry[Connection] = SubscriptionRegistry()
        self.connections = ConnectionIndex()
        self.flusher = Flusher()
        self.stats = DeliveryStats()
        self.faults = Faults()
        self.fanout = Fanout(
            self.registry, self.connections, models, self.stats, self.faults, self.channels
        )
        self.publisher = Publisher(backend, max_pending=max_pending, stats=self.stats)
        self._position = Event("position", None)  # the last event delivered
        self._tasks: list[asyncio.Task[None]] = []
        self.shutting_down = False  # no new connections: they are told to come back

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.shutting_down = False  # an app may be served again after a shutdown
        self.connections.renew_idle_event()
        await self.backend.start(self._deliver)
        self._position = await self.backend.position()
        self.publisher.start(self._position)
        restarts = self.stats.task_restarts
        self._tasks = [
            asyncio.create_task(supervise("publisher", self.publisher.run, restarts)),
            asyncio.create_task(supervise("heartbeat", self._heartbeat, restarts)),
        ]

    async def stop(self) -> None:
        self.publisher.stop()
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks)
        self._tasks = []
        await self.backend.stop()

    async def _heartbeat(self) -> None:
        """One timer for every connection: each heartbeat, a ping for each (the transport
        sends it its own way), and a close for those that answer pings but went silent."""
        while True:
            await asyncio.sleep(self.heartbeat)
            silent_since = time.monotonic() - self.heartbeat_timeout
            for conn in self.connections:
                if conn.pongs and conn.last_seen < silent_since:
                    conn.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
                else:
                    conn.ping()

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run `callback(*args)` on the event loop soon, from any thread; nothing when
        realtime is not running."""
        loop = self.publisher.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)

    def served(self) -> Mapping[str, type[BaseModel]]:
        """The collections this broker serves, by name."""
        return self._models()

    # -- publishing --------------------------------------------------------------------

    def publish(self, events: Sequence[Event]) -> None:
        """Queue events for publication after everything queued before (any thread)."""
        self.publisher.submit(events)

    def publish_one(self, event: Event) -> str:
        """Publish one event from synchronous code and return its id. From another thread
        it waits for the loop; on the loop's thread the backend must publish in-process."""
        publisher = self.publisher
        if publisher.on_loop_thread():
            if not publisher.can_publish_now():
                raise RuntimeError(
                    "on the event loop's thread, await app.realtime_broadcast_async(...): "
                    "this backend cannot publish without awaiting (or this is fan-out)"
                )
            ticket = publisher.submit_one(event)
            publisher.publish_queued_now()
            return ticket.result(0)
        return publisher.submit_one(event).result(timeout=30)

    async def publish_async(self, event: Event) -> str:
        """Publish one event and await its id (from the loop's thread)."""
        return await asyncio.wrap_future(self.publisher.submit_one(event))

    async def flushed(self) -> None:
        """Until everything submitted so far is published and delivered."""
        await self.publisher.mark()

    def _deliver(self, events: Sequence[Event]) -> None:
        """From the backend: published events, in order, on the loop's thread."""
        for event in events:
            if event.is_presence:
                self.presence.apply(event)
            try:
                self.fanout.deliver(event)
            except Exception as error:  # fan-out isolates readers; this is a last resort
                self.faults.record(event.collection or "-", "fan-out", "fan-out", error)
            self._position = event

    # -- connections (see realtime/connections/) ----------------------------------------

    def connect(self, conn: Connection) -> None:
        """`conn` is open: it gets its `connected` frame first, then events."""
        self.connections.add(conn)
        conn.flusher = self.flusher
        conn.globals_from = self._position.seq
        totals = self.stats.connections_total
        totals[conn.transport] = totals.get(conn.transport, 0) + 1
        info = json_tree(public_user(conn.user))
        conn.send(protocol.encode(protocol.connected(conn.id, info, self.heartbeat)))

    def disconnect(self, conn: Connection) -> None:
        """Forget everything about `conn`; safe to call more than once."""
        if not self.connections.remove(conn):
            return
        for topic in list(conn.present or ()):
            self._depart(conn, topic)
        self.registry.remove_connection(conn)
        if conn.close_code == CloseCode.TOO_SLOW and conn.close_reason == TOO_SLOW_REASON:
            self.stats.slow_disconnects += 1

    async def wait_idle(self, timeout: float) -> bool:
        return await self.connections.wait_idle(timeout)

    def close_session(self, session_hash: str) -> None:
        for conn in self.connections.of_session(session_hash):
            conn.close(CloseCode.SESSION_ENDED, "session ended")

    def close_all(self, code: int, reason: str) -> None:
        for conn in self.connections:
            conn.close(code, reason)

    async def going_away(self, timeout: float) -> None:
        """Refuse new connections, close every one with 1001, and give them up to
        `timeout` to go."""
        self.shutting_down = True
        self.close_all(CloseCode.GOING_AWAY, "server shutting down")
        if not await self.wait_idle(timeout):
            log.warning("%d connections still open after 1001", len(self.connections))

    # -- subscriptions -----------------------------------------------------------------

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
        """
        async with conn.command_lock:
            replies: list[Frame] = []
            accepted: list[_Accepted] = []
            seen: set[Any] = set()
            for command in commands:
                try:
                    if isinstance(command, ProtocolError):
                        raise command
                    model, order = self._check_subscription(conn, command, seen)
                except ProtocolError as error:
                    replies.append(protocol.error(error.request_id, error.code, error.message))
                    continue
                except Exception as error:  # app code (visible_fields, say): this one fails
                    assert isinstance(command, Subscribe)
                    collection = command.pattern.collection or "-"
                    self.faults.record(collection, "subscribe", "visible_fields", error)
                    message = "this subscription could not be checked"
                    replies.append(protocol.error(command.request_id, "forbidden", message))
                    continue
                seen.add(command.pattern.key)
                self.registry.add(
                    conn, command.pattern, command.filter, live_from=self._position.seq, held=True
                )
                sub = self.registry.get(conn, command.pattern)
                assert sub is not None
                accepted.append(_Accepted(len(replies), command, model, order, sub))
                replies.append({})  # the `subscribed` reply, once settled
            try:
                frames = await self._settle(conn, accepted, replies)
            except BaseException:
                for item in accepted:
                    if item.sub.held:
                        self.registry.discard(conn, item.command.pattern)
                conn.take_held()
                raise
            # Still without awaiting since the subscriptions went live: nothing can come
            # between these frames, and live events follow them (a join of theirs too).
            for item in accepted:
                topic = self._presence_topic(item.command.pattern)
                if topic is not None:
                    self._arrive(conn, topic)
            if replies_on_stream:
                for reply in replies:
                    conn.send(protocol.encode(reply))
            for frame in frames:
                conn.send(frame)
            return replies

    async def _settle(
        self, conn: Connection, accepted: list[_Accepted], replies: list[Frame]
    ) -> list[str]:
        """Take the snapshots and read the history for held subscriptions, then let them
        go live; returns the replayed and held-back events to send after the replies."""
        registered = self._position.seq
        budget = int(conn.max_queue_bytes * REPLY_SHARE)
        try:
            snapshots, budget = await self._snapshots(conn, accepted, budget)
        except ReadsBlocked as blocked:
            # A table they read is locked: refuse them (the client asks again after
            # retry_after) and settle the others. `accepted` is the caller's list.
            log.warning("snapshot refused for now: %s", blocked)
            for item in [item for item in accepted if item.order is not None]:
                self.registry.discard(conn, item.command.pattern)
                accepted.remove(item)
                message = "a table of this snapshot is locked; try again"
                replies[item.index] = protocol.error(
                    item.command.request_id, ErrorCode.UNAVAILABLE, message, SNAPSHOT_RETRY_AFTER
                )
            snapshots = {}
        resumed: list[tuple[_Accepted, list[Event]]] = []
        for item in accepted:
            item.cutoff = registered
            if item.index in snapshots:
                item.cutoff = snapshots[item.index].pop("seq")
            elif item.command.since is not None:
                events = await self.backend.read_after(item.command.since, self.replay_limit)
                if events is not None:
                    item.recovered = True
                    if events:
                        resumed.append((item, events))
        # From here on nothing awaits: the subscriptions go live, and the events they
        # held back are sent unless the snapshot or the replay covers them already.
        frames: list[str] = []
        if resumed:
            others = [s for s in self.registry.subscriptions_of(conn) if not s.held]
            replayed = replay_frames(
                conn, [(item.sub, evs) for item, evs in resumed], others, self.fanout.access, budget
            )
            if replayed is not None:
                frames.extend(replayed)
                for item, events in resumed:
                    item.cutoff = events[-1].seq
                    item.live_from = events[0].seq - 1  # it has every event after `since`
            else:  # more than the connection could take: it must refetch instead
                for item, _ in resumed:
                    item.recovered = False
        cutoffs: dict[int, int] = {}
        for item in accepted:
            item.sub.held = False
            cutoffs[id(item.sub)] = item.cutoff
            item.sub.live_from = item.cutoff if item.live_from is None else item.live_from
            command = item.command
            topic = self._presence_topic(command.pattern)
            replies[item.index] = protocol.subscribed(
                command.request_id,
                command.pattern.text,
                item.recovered,
                snapshots.get(item.index),
                self.presence.who(topic) if topic is not None else None,
            )
        for seq, frame, subs in conn.take_held():
            if any(seq > cutoffs.get(id(sub), seq) for sub in subs):
                frames.append(frame)
        return frames

    async def _snapshots(
        self, conn: Connection, accepted: list[_Accepted], budget: int
    ) -> tuple[dict[int, dict[str, Any]], int]:
        """The snapshot of each accepted snapshot subscription, by reply index, and what
        is left of the budget (in characters) that they share.

        They are read while no commit can complete, and their position is that of the
        last change announced before: the live events after it are exactly those the
        snapshot does not show.
        """
        wanted = [item for item in accepted if item.order is not None]
        if not wanted:
            return {}, budget
        bodies: dict[int, dict[str, Any]] = {}
        with _commits_held(item.model for item in wanted if item.model is not None):
            for item in wanted:
                assert item.model is not None and item.order is not None
                command = item.command
                records, complete, used = snapshot_records(
                    item.model,
                    conn.user,
                    command.pattern,
                    command.filter,
                    order=item.order[0],
                    limit=min(command.limit or self.snapshot_limit, self.snapshot_limit),
                    max_chars=budget,
                    faults=self.faults,
                )
                budget -= used
                key = item.model._meta.primary_key.name  # how records name their id
                bodies[item.index] = {"records": records, "complete": complete, "key": key}
            mark = self.publisher.mark()
        position = await mark
        for item in wanted:
            assert item.order is not None
            body = bodies[item.index]
            body.update(position=position.id, sort=item.order[1], seq=position.seq)
        return bodies, budget

    def _check_subscription(
        self, conn: Connection, command: Subscribe, seen: set[Any]
    ) -> tuple[type[BaseModel] | None, tuple[Any, str] | None]:
        """The pattern's model (exact patterns) and the snapshot's order, if it has one."""
        pattern, request_id = command.pattern, command.request_id
        if pattern.key in seen:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "the same pattern twice in one request", request_id
            )
        if (
            self.registry.get(conn, pattern) is None
            and self.registry.count(conn) >= self.max_subscriptions
        ):
            raise ProtocolError(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"at most {self.max_subscriptions} subscriptions per connection",
                request_id,
            )
        model = self._authorize(conn, pattern, request_id)
        if not command.snapshot:
            return model, None
        if model is None:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "snapshot needs a collection or record pattern", request_id
            )
        return model, snapshot_order(model, conn.user, command.sort, command.request_id)

    def unsubscribe(self, conn: Connection, pattern: Pattern) -> None:
        self.registry.discard(conn, pattern)
        topic = self._presence_topic(pattern)
        if topic is not None:
            self._depart(conn, topic)

    # -- presence (see realtime/presence.py) -------------------------------------------

    def _presence_topic(self, pattern: Pattern) -> str | None:
        """The topic whose presence a subscription to `pattern` counts in, if any: its
        name, not a wildcard or one record."""
        if pattern.kind is PatternKind.COLLECTION and pattern.collection in self.presence_topics:
            return pattern.collection
        return None

    def _arrive(self, conn: Connection, topic: str) -> None:
        present = conn.present if conn.present is not None else set()
        if topic in present:
            return  # a subscription again to the same topic
        conn.present = present
        present.add(topic)
        join = self.presence.arrive(topic, conn.user)
        if join is not None:
            self.publisher.submit([join])

    def _depart(self, conn: Connection, topic: str) -> None:
        if conn.present is None or topic not in conn.present:
            return
        conn.present.discard(topic)
        leave = self.presence.depart(topic, conn.user)
        if leave is not None and self.publisher.loop is not None:
            self.publisher.submit([leave])

    def _authorize(
        self, conn: Connection, pattern: Pattern, request_id: protocol.RequestId
    ) -> type[BaseModel] | None:
        """The pattern's model for exact patterns; `forbidden` if the user may not read it.

        Wildcards are always allowed: their events are filtered per record instead.
        """
        if pattern.kind not in (PatternKind.COLLECTION, PatternKind.RECORD):
            return None
        assert pattern.collection is not None
        channel = self.channels.get(pattern.collection)
        if channel is not None:  # no model, no records: the channel's read rule
            if pattern.kind is PatternKind.RECORD or not self._channel_readable(channel, conn):
                raise ProtocolError(
                    ErrorCode.FORBIDDEN, f"no readable channel named {channel.name!r}", request_id
                )
            return None
        model = self.served().get(pattern.collection)
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
            self.faults.record(channel.name, "read rule", rule_name(channel.read_rule), error)
            return False


@dataclass(slots=True)
class _Accepted:
    """A subscribe command that passed the checks, while it settles."""

    index: int  # of its reply
    command: Subscribe
    model: type[BaseModel] | None
    order: tuple[Any, str] | None  # the snapshot's ORDER BY and its sort text, if any
    sub: Subscription
    cutoff: int = 0  # events up to here are covered by its snapshot or replay
    recovered: bool = False  # its `since` was replayed
    live_from: int | None = None  # when not the cutoff: after a replay, `since`


def _commits_held(models: Iterable[type[BaseModel]]) -> contextlib.ExitStack:
    """Hold the commits of every database the models use (see runtime.db), and bound
    the reads made meanwhile (ReadsBlocked rather than a deadlock)."""
    stack = contextlib.ExitStack()
    databases = {model._meta.database for model in models}
    for database in databases:
        hold = getattr(database, "commits_held", None)
        if hold is not None:
            stack.enter_context(hold())
    for database in databases:
        bound = getattr(database, "reads_while_held", None)
        if bound is not None:
            stack.enter_context(bound())
    return stack
