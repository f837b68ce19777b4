"""The broker: ties the realtime pipeline's stages together (see `runtime/realtime/`).

Events go down the pipeline: record changes written to a database's outbox are handed
to the publisher by its relay, in commit order, and other events after the commits
this process made before them; the publisher hands them to the backend in that order,
the backend delivers them back in its order, and fan-out fills each connection's
bounded queue. The broker owns the stages and its jobs (`runtime/realtime/broker/`: a
connection's lifecycle, subscribing with its snapshots and replays, who may subscribe to
what, presence), wires them to one another, starts and stops them, publishes, and
connects and disconnects connections across them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .query import FilterLimits
from .realtime.broker.authorization import Authorization
from .realtime.broker.lifecycle import Lifecycle
from .realtime.broker.presence import Presence
from .realtime.broker.relay import Relay
from .realtime.broker.sharing import Sharing
from .realtime.broker.snapshots import Snapshots
from .realtime.broker.subscribing import Subscribing
from .realtime.broker.writes_under_way import WritesUnderWay
from .realtime.capture.outbox import install_outboxes
from .realtime.connections.flusher import Flusher
from .realtime.connections.index import ConnectionIndex
from .realtime.events import Event, session_ended
from .realtime.fanout.delivery import Fanout
from .realtime.fanout.registry import SubscriptionRegistry
from .realtime.protocol import CloseCode
from .realtime.publishing.backends import Position
from .realtime.publishing.codec import EventCodec
from .realtime.publishing.publisher import NotRunning, Publisher
from .realtime.stats import DeliveryStats, Faults
from .realtime.supervisor import supervise

if TYPE_CHECKING:
    from .base_model import BaseModel
    from .realtime.channels import Channel
    from .realtime.connections.connection import Connection
    from .realtime.publishing.backends import Backend

__all__ = ["Broker", "OutboxSettings"]

log = logging.getLogger("runtime.realtime")


@dataclass(frozen=True, slots=True)
class OutboxSettings:
    """The relays' settings (`realtime.outbox_*`)."""

    poll: float = 1.0  # seconds between looks for commits nothing announces
    keep: float = 60.0  # seconds a published row is kept
    size: int = 100_000  # rows kept at most
    # Seconds a request's events wait at most for the writes served with it (0: never).
    group_wait: float = 0.005


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
        outbox: OutboxSettings | None = None,
        filter_limits: FilterLimits | None = None,
        max_expand: int = 8,
    ) -> None:
        self.backend = backend
        self.outbox = outbox  # None: record changes are published straight from the commit
        self.relays: list[Relay] = []
        # The requests being served that may commit: the relays group their events.
        self.writes = WritesUnderWay()
        self._models = models
        # The app's (the Realtime extension's), read live: declared later, still seen.
        self.channels: Mapping[str, Channel] = channels if channels is not None else {}
        self.stats = DeliveryStats()
        self.faults = Faults()
        # The stages, in the data's order.
        self.publisher = Publisher(backend, max_pending=max_pending, stats=self.stats)
        self.registry: SubscriptionRegistry[Connection] = SubscriptionRegistry()
        self.connections = ConnectionIndex()
        self.fanout = Fanout(
            self.registry, self.connections, models, self.stats, self.faults, self.channels
        )
        self.flusher = Flusher()
        # The jobs.
        self.lifecycle = Lifecycle(
            self.connections,
            self.flusher,
            self.stats,
            self.faults,
            heartbeat=heartbeat,
            heartbeat_timeout=heartbeat_timeout,
        )
        self.presence = Presence(
            presence_topics if presence_topics is not None else set(), self._publish_presence
        )
        # A backend several processes share shares presence and connection counts too.
        ledger = getattr(backend, "shared", None)
        self.sharing = (
            Sharing(ledger, self.presence, self.connections, heartbeat=heartbeat)
            if ledger is not None
            else None
        )
        if ledger is not None:
            ledger.on_reset = self.presence.reset
        snapshots = Snapshots(
            limit=snapshot_limit, faults=self.faults, position=self._snapshot_position
        )
        authorization = Authorization(
            models,
            self.channels,
            self.registry,
            snapshots,
            self.faults,
            max_subscriptions=max_subscriptions,
            filter_limits=filter_limits,
            max_expand=max_expand,
        )
        self.subscribing = Subscribing(
            self.registry,
            authorization,
            snapshots,
            self.presence,
            backend,
            self.fanout.access,
            self.faults,
            replay_limit=replay_limit,
            delivered=lambda: self._delivered,
        )
        self._delivered = 0  # the offset of the last event delivered
        self._epoch = ""  # and its epoch
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.lifecycle.start()
        # Where the backend's deliveries begin, set before any can come (a network
        # backend's reader runs once this task awaits again).
        position = await self.backend.start(self._deliver)
        self._delivered = position.offset
        self._epoch = position.epoch
        self.publisher.start(position)
        restarts = self.stats.task_restarts
        self._tasks = [
            asyncio.create_task(supervise("publisher", self.publisher.run, restarts)),
            asyncio.create_task(supervise("heartbeat", self.lifecycle.keep_alive, restarts)),
        ]
        self.relays = self._start_relays()
        for relay in self.relays:
            self._tasks.append(asyncio.create_task(supervise("relay", relay.run, restarts)))
            if relay.listens:
                listen = supervise("outbox listener", relay.listen, restarts)
                self._tasks.append(asyncio.create_task(listen))
        if self.sharing is not None:
            sharing = supervise("sharing", self.sharing.run, restarts)
            self._tasks.append(asyncio.create_task(sharing))

    def _start_relays(self) -> list[Relay]:
        """One relay per database of the served collections (their outboxes installed)."""
        settings = self.outbox
        if settings is None:
            return []
        codec = EventCodec(Event)
        relays = [
            Relay(
                writer,
                self.publisher,
                codec,
                self._models,
                self.stats,
                poll=settings.poll,
                keep=settings.keep,
                size=settings.size,
                group_wait=settings.group_wait,
                max_in_flight=self.publisher.max_pending // 2,
                writes=self.writes,
            )
            for writer in install_outboxes(self._models().values(), codec)
        ]
        for relay in relays:
            relay.start()
        return relays

    async def stop(self) -> None:
        for relay in self.relays:
            relay.stop()
        self.relays = []
        self.publisher.stop()
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks)
        self._tasks = []
        if self.sharing is not None:
            await self.sharing.stop()
        await self.backend.stop()

    def served(self) -> Mapping[str, type[BaseModel]]:
        """The collections this broker serves, by name."""
        return self._models()

    # -- publishing --------------------------------------------------------------------

    def publish(self, events: Sequence[Event]) -> None:
        """Queue events for publication after everything queued before, and after the
        changes this process committed before (any thread)."""
        publisher = self.publisher
        if not self.relays or publisher.on_loop_thread():
            self._after_commits()
            publisher.submit(events)
            return
        loop = publisher.loop
        if loop is None:
            raise NotRunning("realtime is not serving")
        loop.call_soon_threadsafe(self._publish_on_loop, list(events))

    def _publish_on_loop(self, events: list[Event]) -> None:
        self._after_commits()
        with contextlib.suppress(NotRunning):  # realtime stopped meanwhile
            self.publisher.submit(events)

    def _after_commits(self) -> None:
        """Hand the relays what this process committed so far (on the loop's thread), so
        that what is published next comes after it."""
        for relay in self.relays:
            if relay.behind():
                relay.catch_up()

    def _snapshot_position(self) -> asyncio.Future[Position]:
        """Where a snapshot read now stands (under held commits, in the read's
        transaction): after every change committed that the read sees, whichever
        process committed it, and before every other."""
        for relay in self.relays:
            relay.catch_up(upto=relay.horizon())
        return self.publisher.mark()

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
            self._after_commits()
            ticket = publisher.submit_one(event)
            publisher.publish_queued_now()
            return ticket.result(0)
        loop = publisher.loop
        if not self.relays or loop is None:
            return publisher.submit_one(event).result(timeout=30)
        submitted = asyncio.run_coroutine_threadsafe(self._submit_one(event), loop)
        ticket = submitted.result(timeout=30)
        return ticket.result(timeout=30)

    async def _submit_one(self, event: Event) -> concurrent.futures.Future[str]:
        self._after_commits()
        return self.publisher.submit_one(event)

    async def publish_async(self, event: Event) -> str:
        """Publish one event and await its id (from the loop's thread)."""
        self._after_commits()
        return await asyncio.wrap_future(self.publisher.submit_one(event))

    async def flushed(self) -> None:
        """Until everything submitted so far, and every change this process committed,
        is published and delivered."""
        self._after_commits()
        await self.publisher.mark()

    def end_session(self, token_hash: str) -> None:
        """Close that session's connections (4401) on every process that shares the
        backend, after the events committed before (any thread)."""
        if self.publisher.loop is not None:  # not serving: no connections anywhere here
            with contextlib.suppress(NotRunning):
                self.publish([session_ended(token_hash)])

    def _publish_presence(self, event: Event) -> None:
        if self.publisher.loop is not None:  # a leave as realtime stops: nobody to tell
            self.publish([event])

    def _deliver(self, events: Sequence[Event]) -> None:
        """From the backend: published events, in order, on the loop's thread."""
        if not events:
            return
        at = Position.of(events[0])
        if at.offset != self._delivered + 1 or at.epoch != self._epoch:
            self._interrupted(at)
        if len(events) == 1 and self.flusher.idle:
            with self.flusher.writing_through():
                self._deliver_each(events)
        else:
            self._deliver_each(events)
        self.publisher.delivered(Position.of(events[-1]))

    def _deliver_each(self, events: Sequence[Event]) -> None:
        for event in events:
            self._delivered = event.seq
            if event.is_control:  # for the servers: no client hears it
                self.lifecycle.close_session(event.data)
                continue
            if event.is_presence:
                self.presence.apply(event)
            try:
                self.fanout.deliver(event)
            except Exception as error:  # fan-out isolates readers; this is a last resort
                self.faults.record(event.collection or "-", "fan-out", "fan-out", error)

    def _interrupted(self, at: Position) -> None:
        """Events were missed (the backend lost its history, or trimmed what this process
        had not read yet): no connection can be sure of what it has, so each is told to
        reconnect and resume, as after a restart; their `since` then says `recovered:
        false` where the history cannot cover it."""
        log.warning(
            "realtime: events interrupted (expected %s-%d, got %s); connections are told "
            "to reconnect and resume",
            self._epoch,
            self._delivered + 1,
            at.id,
        )
        self.stats.interruptions += 1
        self._epoch = at.epoch
        self.lifecycle.close_all(CloseCode.GOING_AWAY, "events were interrupted; resume")

    # -- connections -------------------------------------------------------------------

    def connect(self, conn: Connection) -> None:
        """`conn` is open: it gets its `connected` frame first, then events."""
        self.lifecycle.connect(conn, self._delivered)

    def disconnect(self, conn: Connection) -> None:
        """Forget everything about `conn`; safe to call more than once."""
        if self.lifecycle.forget(conn):
            self.presence.leave_everywhere(conn)
            self.registry.remove_connection(conn)
