"""The broker: connections, their subscriptions, and fan-out of events to them.

Plain synchronous code that runs on the event loop's thread and does no I/O: transports
hand it connections and client commands, backends hand it published events, and it
fills each connection's bounded send queue. Publishing never waits on a client.

Fan-out encodes an event once per distinct payload (per set of visible fields), not
once per subscriber, and evaluates read rules once per distinct user.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base_model import BaseModel
from .realtime import protocol
from .realtime.backends import Backend
from .realtime.connection import TOO_SLOW_REASON, Connection
from .realtime.events import Event
from .realtime.patterns import Pattern, PatternKind
from .realtime.protocol import CloseCode, ErrorCode, ProtocolError, Subscribe
from .realtime.registry import SubscriptionRegistry, filter_matches

__all__ = ["Broker", "BrokerStats"]


@dataclass
class BrokerStats:
    """Counters for /realtime/metrics."""

    published: int = 0
    delivered: int = 0
    dropped: int = 0
    rate_limited: int = 0
    slow_disconnects: int = 0
    connections_total: dict[str, int] = field(default_factory=dict)


class Broker:
    def __init__(
        self,
        backend: Backend,
        models: Callable[[], Mapping[str, type[BaseModel]]],
        *,
        max_subscriptions: int = 100,
        snapshot_limit: int = 500,
    ) -> None:
        self.backend = backend
        self._models = models
        self.max_subscriptions = max_subscriptions
        self.snapshot_limit = snapshot_limit
        self.registry: SubscriptionRegistry[Connection] = SubscriptionRegistry()
        self.connections: dict[str, Connection] = {}
        self._by_user: dict[Any, set[Connection]] = {}
        self._by_session: dict[str, set[Connection]] = {}
        # Collection-less custom events reach a connection whatever it subscribed: from this
        # event id on (the head when it opened, or an earlier point replayed since).
        self._globals_from: dict[Connection, str] = {}
        self.stats = BrokerStats()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._idle = asyncio.Event()  # set whenever no connection is open
        self._idle.set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._idle = asyncio.Event()  # an Event belongs to the loop that first waits on it
        if not self.connections:
            self._idle.set()
        await self.backend.start(self._deliver)

    async def stop(self) -> None:
        await self.backend.stop()
        self.loop = None

    def served(self) -> Mapping[str, type[BaseModel]]:
        """The collections this broker serves, by name."""
        return self._models()

    def _on_loop(self) -> bool:
        loop = self.loop
        return loop is None or not loop.is_running() or self._loop_thread == threading.get_ident()

    # -- connections -------------------------------------------------------------------

    def connect(self, conn: Connection) -> None:
        self.connections[conn.id] = conn
        self._idle.clear()
        self._globals_from[conn] = self.backend.head()
        if conn.user is not None:
            self._by_user.setdefault(conn.user_id, set()).add(conn)
        if conn.session_hash is not None:
            self._by_session.setdefault(conn.session_hash, set()).add(conn)
        totals = self.stats.connections_total
        totals[conn.transport] = totals.get(conn.transport, 0) + 1

    def disconnect(self, conn: Connection) -> None:
        """Forget everything about `conn`; safe to call more than once."""
        if self.connections.pop(conn.id, None) is None:
            return
        self._globals_from.pop(conn, None)
        self.registry.remove_connection(conn)
        _discard(self._by_user, conn.user_id, conn)
        _discard(self._by_session, conn.session_hash, conn)
        if conn.close_code == CloseCode.TOO_SLOW and conn.close_reason == TOO_SLOW_REASON:
            self.stats.slow_disconnects += 1
        if not self.connections:
            self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no connection is open; False if `timeout` passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def close_session(self, session_hash: str) -> None:
        for conn in list(self._by_session.get(session_hash, ())):
            conn.close(CloseCode.SESSION_ENDED, "session ended")

    def close_all(self, code: int, reason: str) -> None:
        for conn in list(self.connections.values()):
            conn.close(code, reason)

    def counts_by_transport(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for conn in self.connections.values():
            counts[conn.transport] = counts.get(conn.transport, 0) + 1
        return counts

    # -- subscriptions -----------------------------------------------------------------

    def subscribe(self, conn: Connection, command: Subscribe) -> list[str]:
        """Subscribe; returns the frames to send: `subscribed`, then any replay.

        Raises ProtocolError when the subscription is refused.
        """
        replies, replay = self.subscribe_many(conn, [command])
        reply = replies[0]
        if isinstance(reply, ProtocolError):
            raise reply
        return [reply, *replay]

    def subscribe_many(
        self, conn: Connection, commands: list[Subscribe]
    ) -> tuple[list[str | ProtocolError], list[str]]:
        """Subscribe to several patterns at once (an SSE stream's query, say).

        Returns a reply per command (the encoded `subscribed` frame, or the error) and
        one replay for all the resumed ones, in event order and each event once.

        Runs without awaiting, like publishing, so nothing can be published between
        taking the position and going live: no gap, no duplicate.
        """
        replies: list[str | ProtocolError] = []
        resumed: list[tuple[Subscribe, list[Event]]] = []
        head = self.backend.head()
        for command in commands:
            try:
                model = self._check_subscription(conn, command)
            except ProtocolError as error:
                replies.append(error)
                continue
            snapshot, events, live_from = None, None, head
            if command.snapshot and model is not None:
                snapshot = self._snapshot(conn, model, command.pattern, command.filter, head)
            elif command.since is not None:
                events = self.backend.events_after(command.since)
                if events is not None:
                    resumed.append((command, events))
                    live_from = command.since
            self.registry.add(conn, command.pattern, command.filter, live_from=live_from)
            reply = protocol.subscribed(
                command.request_id, command.pattern.text, events is not None, snapshot
            )
            replies.append(protocol.encode(reply))
        return replies, self._replay(conn, resumed) if resumed else []

    def _check_subscription(self, conn: Connection, command: Subscribe) -> type[BaseModel] | None:
        pattern, request_id = command.pattern, command.request_id
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
        if command.snapshot and model is None:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "snapshot needs a collection or record pattern", request_id
            )
        return model

    def unsubscribe(self, conn: Connection, pattern: Pattern) -> None:
        self.registry.discard(conn, pattern)

    def _authorize(
        self, conn: Connection, pattern: Pattern, request_id: protocol.RequestId
    ) -> type[BaseModel] | None:
        """The pattern's model for exact patterns; `forbidden` if the user may not read it.

        Wildcards are always allowed: their events are filtered per record instead.
        """
        if pattern.kind not in (PatternKind.COLLECTION, PatternKind.RECORD):
            return None
        assert pattern.collection is not None
        model = self.served().get(pattern.collection)
        if model is None or not model.collection_readable_by(conn.user):
            raise ProtocolError(
                ErrorCode.FORBIDDEN,
                f"no readable collection named {pattern.collection!r}",
                request_id,
            )
        return model

    def _snapshot(
        self,
        conn: Connection,
        model: type[BaseModel],
        pattern: Pattern,
        filter: Mapping[str, Any] | None,
        position: str,
    ) -> dict[str, Any]:
        query = model.readable_query(conn.user)
        if pattern.kind is PatternKind.RECORD:
            query = query.where(model._meta.primary_key == pattern.record_id)
        records: list[dict[str, Any]] = []
        complete = True
        for record in query.order_by(model._meta.primary_key).iterator():
            visible = record.visible_to(conn.user)
            if visible is None or not filter_matches(filter, visible):
                continue
            if len(records) == self.snapshot_limit:
                complete = False
                break
            records.append(visible)
        return {"records": records, "position": position, "complete": complete}

    def _replay(self, conn: Connection, resumed: list[tuple[Subscribe, list[Event]]]) -> list[str]:
        """Frames of missed events for newly resumed subscriptions, in event order.

        Each `events` list is a suffix of the same history; the longest is walked once.
        An event is skipped if the connection already got it: through one of its other
        subscriptions (live since before the event), or, for collection-less custom
        events, because the connection was open (or had them replayed) by then.
        """
        events = max((evs for _, evs in resumed), key=len)
        index = {event.id: i for i, event in enumerate(events)}

        def delivered_from(live_from: str) -> int:
            # From which position a subscription live since `live_from` got events; an
            # id not in the list is older than its start.
            return index[live_from] + 1 if live_from in index else 0

        new = [
            (len(events) - len(evs), command.pattern, command.filter) for command, evs in resumed
        ]
        new_keys = {pattern.key for _, pattern, _ in new}
        others = [
            (delivered_from(sub.live_from), sub)
            for sub in self.registry.subscriptions_of(conn)
            if sub.pattern.key not in new_keys
        ]
        globals_from = self._globals_from.get(conn, "")
        globals_start = delivered_from(globals_from)  # globals before it were missed
        frames: list[str] = []
        for i, event in enumerate(events):
            frame, visible = self._frame_for(conn, event)
            if frame is None:
                continue
            if event.collection is None:  # custom events that no pattern governs
                wanted = i < globals_start
            else:
                collection, record_id = event.collection, event.record_id
                wanted = any(
                    i >= start and p.matches(collection, record_id) and filter_matches(f, visible)
                    for start, p, f in new
                ) and not any(
                    i >= start
                    and sub.pattern.matches(collection, record_id)
                    and filter_matches(sub.filter, visible)
                    for start, sub in others
                )
            if wanted:
                frames.append(frame)
        if globals_start > 0:  # those globals are now delivered from the earliest `since`
            earliest = max(resumed, key=lambda item: len(item[1]))[0]
            self._globals_from[conn] = earliest.since or globals_from
        return frames

    # -- publishing --------------------------------------------------------------------

    def publish(self, event: Event) -> str:
        """Publish from any thread; returns the event id.

        On the loop's thread (or with no loop running) it publishes at once; from
        another thread it hands the event to the loop, in order, and waits for the id.
        """
        loop = self.loop
        if loop is None or self._on_loop():
            return self.backend.publish(event)
        future: concurrent.futures.Future[str] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(self.backend.publish(event))
            except Exception as exc:  # handed to the publishing thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result()

    def publish_nowait(self, events: Iterable[Event]) -> None:
        """Publish from any thread without waiting for ids (commit hooks use this)."""
        loop = self.loop
        if loop is None or self._on_loop():
            for event in events:
                self.backend.publish(event)
            return
        batch = list(events)
        loop.call_soon_threadsafe(lambda: [self.backend.publish(e) for e in batch])

    # -- fan-out (hot path) ------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        """Called by the backend for every event, in id order, on the loop's thread."""
        self.stats.published += 1
        if event.is_custom:
            self._deliver_custom(event)
            return
        assert event.collection is not None
        matches = self.registry.match(event.collection, event.record_id)
        if not matches:
            return
        model = self.served().get(event.collection)
        if model is None:
            return
        record = _rebuild(model, event.record or {})
        readable: dict[Any, bool] = {}
        fields_of: dict[Any, tuple[str, ...]] = {}
        encoded: dict[tuple[str, ...], tuple[str | None, dict[str, Any]]] = {}
        for conn, subscriptions in matches.items():
            user, user_id = conn.user, conn.user_id
            allowed = readable.get(user_id)
            if allowed is None:
                allowed = readable[user_id] = record.readable_by(user)
                fields_of[user_id] = model.visible_fields(user)
            if not allowed:
                continue
            fields = fields_of[user_id]
            entry = encoded.get(fields)
            if entry is None:
                entry = encoded[fields] = _encode_record_event(event, fields)
            frame, visible = entry
            if frame is not None and any(filter_matches(s.filter, visible) for s in subscriptions):
                self._send(conn, frame)

    def _deliver_custom(self, event: Event) -> None:
        candidates: Iterable[Connection]
        if event.collection is None:
            # No collection: the targets, or everyone; subscriptions play no part.
            if event.client_ids is None and event.user_ids is None:
                candidates = self.connections.values()
            else:
                candidates = self._targets(event.client_ids or (), event.user_ids or ())
        else:
            model = self.served().get(event.collection)
            if model is None:
                return
            candidates = [
                conn
                for conn in self.registry.match(event.collection)
                if _is_target(event, conn) and model.collection_readable_by(conn.user)
            ]
        frame = protocol.encode(_custom_frame(event))
        for conn in candidates:
            self._send(conn, frame)

    def _targets(self, client_ids: Iterable[str], user_ids: Iterable[Any]) -> set[Connection]:
        found = {self.connections[c] for c in client_ids if c in self.connections}
        for user_id in user_ids:
            found.update(self._by_user.get(user_id, ()))
        return found

    def _send(self, conn: Connection, frame: str) -> None:
        if conn.send(frame):
            self.stats.delivered += 1
        else:
            self.stats.dropped += 1

    def _frame_for(self, conn: Connection, event: Event) -> tuple[str | None, dict[str, Any]]:
        """One event's frame for one connection (replay path), or None if not for it."""
        if event.is_custom:
            if not _is_target(event, conn):
                return None, {}
            if event.collection is not None:
                model = self.served().get(event.collection)
                if model is None or not model.collection_readable_by(conn.user):
                    return None, {}
            return protocol.encode(_custom_frame(event)), {}
        model = self.served().get(event.collection or "")
        if model is None:
            return None, {}
        record = _rebuild(model, event.record or {})
        if not record.readable_by(conn.user):
            return None, {}
        return _encode_record_event(event, model.visible_fields(conn.user))


def _is_target(event: Event, conn: Connection) -> bool:
    """Whether a custom event's client and user targets (if any) include `conn`."""
    if event.client_ids is None and event.user_ids is None:
        return True
    return conn.id in (event.client_ids or ()) or conn.user_id in (event.user_ids or ())


def _discard(index: dict[Any, set[Connection]], key: Any, conn: Connection) -> None:
    bucket = index.get(key)
    if bucket is not None:
        bucket.discard(conn)
        if not bucket:
            del index[key]


def _rebuild(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """A model instance from an event's data, for the read rule (no query, no defaults)."""
    record = model.__new__(model)
    record.__data__ = dict(data)
    record._dirty = set()
    record.__rel__ = {}
    return record


def _encode_record_event(
    event: Event, fields: tuple[str, ...]
) -> tuple[str | None, dict[str, Any]]:
    """The frame for readers who see `fields`; None for an update they cannot see."""
    data = event.record or {}
    visible = {name: data[name] for name in fields if name in data}
    changed = [name for name in event.changed if name in visible]
    if event.action == "update" and not changed:
        return None, visible
    frame: dict[str, Any] = {
        "type": "event",
        "id": event.id,
        "collection": event.collection,
        "action": event.action,
        "record": visible,
    }
    if event.action == "update":
        frame["changed"] = changed
    return protocol.encode(frame), visible


def _custom_frame(event: Event) -> dict[str, Any]:
    return {
        "type": "event",
        "id": event.id,
        "collection": event.collection,
        "action": "custom",
        "name": event.name,
        "data": event.data,
    }
