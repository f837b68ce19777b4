"""The publisher, with the in-process backend and no sockets: order across threads, a
failing backend, the queue's bound, restarts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from runtime.realtime.events import Event, custom_event
from runtime.realtime.publishing.backends.memory import MemoryBackend
from runtime.realtime.publishing.publisher import NotRunning, Publisher
from runtime.realtime.stats import DeliveryStats
from runtime.realtime.supervisor import supervise
from tests.support import TIMEOUT


class FlakyBackend(MemoryBackend):
    """Fails its first `failures` publications, as a network backend might."""

    def __init__(self, failures: int) -> None:
        super().__init__(history_size=100)
        self.failures = failures

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("backend down")
        return await super().publish(events)


def _names(events: list[Event]) -> list[str | None]:
    return [event.name for event in events]


async def _started(
    backend: MemoryBackend, stats: DeliveryStats | None = None, max_pending: int = 1000
) -> tuple[Publisher, list[Event]]:
    delivered: list[Event] = []
    await backend.start(delivered.extend)
    publisher = Publisher(backend, max_pending=max_pending, stats=stats or DeliveryStats())
    publisher.start(await backend.position())
    return publisher, delivered


async def test_a_failing_backend_keeps_the_order_and_the_task_comes_back() -> None:
    stats = DeliveryStats()
    backend = FlakyBackend(failures=2)
    publisher, delivered = await _started(backend, stats)
    task = asyncio.create_task(
        supervise("publisher", publisher.run, stats.task_restarts, first_delay=0.01)
    )
    try:
        publisher.submit([custom_event(f"e{i}", None) for i in range(5)])
        ticket = publisher.submit_one(custom_event("last", None))
        assert await asyncio.wait_for(asyncio.wrap_future(ticket), TIMEOUT)
        assert _names(delivered) == ["e0", "e1", "e2", "e3", "e4", "last"]
        assert [e.seq for e in delivered] == [1, 2, 3, 4, 5, 6]
        assert stats.task_restarts == {"publisher": 2}
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
