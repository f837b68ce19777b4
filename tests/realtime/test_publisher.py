"""The publisher, with the in-process backend and no sockets: order across threads, a
failing backend, the queue's bound, restarts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

import pytest

from runtime.realtime.events import Event, custom_event
from runtime.realtime.publishing.backends import (
    BackendUnavailable,
    Deliver,
    Position,
    UnpublishableEvent,
)
from runtime.realtime.publishing.backends.memory import MemoryBackend
from runtime.realtime.publishing.publisher import BrokerUnavailable, NotRunning, Publisher
from runtime.realtime.stats import DeliveryStats
from tests.support import TIMEOUT


class FlakyBackend(MemoryBackend):
    """Fails its first `failures` publications, as a network backend might; with
    `lost_acks`, each failure comes after the events went out (the acknowledgement was
    lost on the way back)."""

    def __init__(self, failures: int, *, lost_acks: bool = False) -> None:
        super().__init__(history_size=100)
        self.failures = failures
        self.lost_acks = lost_acks

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        if self.failures:
            self.failures -= 1
            if self.lost_acks:
                await super().publish(events)
            raise BackendUnavailable("backend down")
        return await super().publish(events)


class LateBackend(MemoryBackend):
    """Delivers what it publishes only when told to, as a network backend delivers
    after its publish returns."""

    def __init__(self) -> None:
        super().__init__(history_size=100)
        self.held: list[Event] = []
        self._late: Deliver | None = None

    async def start(self, deliver: Deliver) -> Position:
        self._late = deliver
        return await super().start(self.held.extend)

    def deliver_held(self) -> None:
        assert self._late is not None
        held, self.held = self.held, []
        self._late(held)


def _names(events: list[Event]) -> list[str | None]:
    return [event.name for event in events]


async def _started(
    backend: MemoryBackend,
    stats: DeliveryStats | None = None,
    max_pending: int = 1000,
) -> tuple[Publisher, list[Event]]:
    """A publisher on `backend`, told of each delivery as the broker tells it."""
    delivered: list[Event] = []
    publisher = Publisher(
        backend, max_pending=max_pending, stats=stats or DeliveryStats(), retry_delays=(0.01, 0.1)
    )

    def deliver(events: Sequence[Event]) -> None:
        delivered.extend(events)
        publisher.delivered(Position.of(events[-1]))

    publisher.start(await backend.start(deliver))
    return publisher, delivered


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0)


async def _running(publisher: Publisher) -> asyncio.Task[None]:
    return asyncio.create_task(publisher.run())


@pytest.mark.parametrize("lost_acks", [False, True], ids=["refused", "lost-ack"])
async def test_record_changes_wait_out_an_outage_in_order_and_once(
    lost_acks: bool, caplog: pytest.LogCaptureFixture
) -> None:
    stats = DeliveryStats()
    backend = FlakyBackend(failures=3, lost_acks=lost_acks)
    publisher, delivered = await _started(backend, stats)
    task = await _running(publisher)
    try:
        publisher.submit([custom_event(f"e{i}", None) for i in range(5)])
        await asyncio.wait_for(publisher.mark(), TIMEOUT)
        # A retry after a lost acknowledgement is recognised by the events' keys.
        assert _names(delivered) == ["e0", "e1", "e2", "e3", "e4"]
        assert [e.seq for e in delivered] == [1, 2, 3, 4, 5]
        assert stats.broker_outages == 1 and publisher.outage is None
        failures = [r for r in caplog.records if "backend failed" in r.getMessage()]
        assert len(failures) == 1  # one outage, logged once
        assert any("is back" in r.getMessage() for r in caplog.records)
    finally:
        task.cancel()
        publisher.stop()


async def test_a_broadcast_learns_of_an_outage_and_later_ones_are_refused_until_it_ends() -> None:
    backend = FlakyBackend(failures=1)
    publisher, delivered = await _started(backend)
    publisher.submit([custom_event("record", None)])
    ticket = publisher.submit_one(custom_event("broadcast", None))
    with pytest.raises(BackendUnavailable):  # what the test drives by hand
        await publisher._publish_batch()
    with pytest.raises(BrokerUnavailable, match="backend down") as failed:
        ticket.result(0)
    assert isinstance(failed.value.__cause__, BackendUnavailable)
    with pytest.raises(BrokerUnavailable):  # known down: refused at once
        publisher.submit_one(custom_event("refused", None))
    assert publisher.pending == 1  # the record change waits
    assert await publisher._publish_batch()  # the backend is back
    assert _names(delivered) == ["record"]
    ticket = publisher.submit_one(custom_event("after", None))
    assert publisher.publish_queued_now() and ticket.result(0).endswith("-2")


async def test_a_mark_waits_for_delivery_not_only_publication() -> None:
    backend = LateBackend()
    publisher, delivered = await _started(backend)
    task = await _running(publisher)
    try:
        publisher.submit([custom_event("a", None), custom_event("b", None)])
        mark = publisher.mark()
        await asyncio.wait_for(_until(lambda: len(backend.held) == 2), TIMEOUT)
        await asyncio.sleep(0)  # published, not delivered: the mark waits
        assert not mark.done()
        backend.deliver_held()
        position = await asyncio.wait_for(mark, TIMEOUT)
        assert _names(delivered) == ["a", "b"]
        assert position == Position(backend.epoch, 2)
    finally:
        task.cancel()
        publisher.stop()


async def test_threads_and_the_loop_publish_in_submission_order() -> None:
    publisher, delivered = await _started(MemoryBackend(history_size=0))
    task = asyncio.create_task(publisher.run())
    try:
        done = threading.Event()

        def from_a_thread() -> None:
            publisher.submit([custom_event("thread", None)])
            done.set()

        thread = threading.Thread(target=from_a_thread)
        thread.start()
        assert await asyncio.to_thread(done.wait, TIMEOUT)
        publisher.submit([custom_event("loop", None)])  # after: it must not overtake
        await asyncio.wait_for(publisher.mark(), TIMEOUT)
        assert _names(delivered) == ["thread", "loop"]
        thread.join(TIMEOUT)
    finally:
        task.cancel()


async def test_the_queue_is_bounded() -> None:
    stats = DeliveryStats()
    publisher, delivered = await _started(MemoryBackend(history_size=0), stats, max_pending=3)
    publisher.submit([custom_event("a", None), custom_event("b", None)])
    publisher.submit([custom_event("c", None), custom_event("d", None)])  # no room: lost
    with pytest.raises(RuntimeError, match="full"):
        publisher.submit_one(custom_event("e", None))
        publisher.submit_one(custom_event("f", None))
    assert stats.lost == 3
    assert publisher.publish_queued_now()
    assert _names(delivered) == ["a", "b", "e"]


async def test_publishing_synchronously_on_the_loop() -> None:
    publisher, delivered = await _started(MemoryBackend(history_size=0))
    publisher.submit([custom_event("queued", None)])
    ticket = publisher.submit_one(custom_event("mine", None))
    assert publisher.publish_queued_now()  # the earlier one first
    assert ticket.result(0).endswith("-2") and _names(delivered) == ["queued", "mine"]


async def test_stopped_and_started_again() -> None:
    backend = MemoryBackend(history_size=0)
    publisher, delivered = await _started(backend)
    thread = threading.Thread(target=publisher.submit, args=([custom_event("x", None)],))
    thread.start()
    thread.join(TIMEOUT)  # queued, never published: stop drops it
    publisher.stop()
    with pytest.raises(NotRunning):
        publisher.submit([custom_event("y", None)])
    publisher.start(await backend.position())
    task = asyncio.create_task(publisher.run())
    await asyncio.sleep(0)  # let it reach its wait: only a wake-up gets it going now
    try:
        publisher.submit([custom_event("after", None)])
        await asyncio.wait_for(publisher.mark(), TIMEOUT)
        assert _names(delivered) == ["after"]
    finally:
        task.cancel()


class PickyBackend(MemoryBackend):
    """Cannot carry an event named "bad", as a codec cannot carry some value."""

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        for index, event in enumerate(events):
            if event.name == "bad":
                raise UnpublishableEvent(index, TypeError("cannot encode a thing"))
        return await super().publish(events)


async def test_an_event_the_backend_cannot_carry_is_lost_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = DeliveryStats()
    publisher, delivered = await _started(PickyBackend(history_size=10), stats)
    task = await _running(publisher)
    try:
        publisher.submit([custom_event("good 1", None)])
        ticket = publisher.submit_one(custom_event("bad", None))
        publisher.submit([custom_event("good 2", None)])
        await asyncio.wait_for(publisher.mark(), TIMEOUT)
        assert _names(delivered) == ["good 1", "good 2"]
        with pytest.raises(ValueError, match="cannot encode a thing"):
            ticket.result(0)
        assert stats.lost == 1 and stats.broker_outages == 0 and publisher.outage is None
        assert any("cannot be published" in r.getMessage() for r in caplog.records)
    finally:
        task.cancel()
        publisher.stop()
