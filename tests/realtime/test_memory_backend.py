"""The in-process backend's history, bounded in events and in bytes, and the measure of
an event's bytes, checked against what Python really holds for it (tracemalloc)."""

from __future__ import annotations

import gc
import json
import tracemalloc

import pytest

from runtime.db import RecordChange
from runtime.realtime.events import Event, custom_event, record_event
from runtime.realtime.protocol import Publish, parse_client_frame
from runtime.realtime.publishing.backends.memory import MemoryBackend, event_bytes


def _published(payload: str) -> Event:
    """A browser's publish, as the server makes it an event: parsed from its frame (the
    ids of an SSE POST item are parsed the same way), then copied into JSON types."""
    frame = '{"type":"publish","channel":"lobby","name":"x","data":' + payload + "}"
    command = parse_client_frame(frame, max_size=1 << 20)
    user = {"id": 7, "username": "mallory", "is_admin": False}
    assert isinstance(command, Publish)
    return custom_event("x", command.data, collection="lobby", user=user)


# What a hostile publisher sends to make the server hold the most for the fewest bytes,
# and what an honest one sends; each about 16 KB of JSON.
PAYLOADS = {
    "ascii text": json.dumps("x" * 16_000),
    "astral text": json.dumps("\U0001f600" * 4_000, ensure_ascii=False),
    "empty lists": "[" + ",".join(["[]"] * 5_000) + "]",
    "empty objects": "[" + ",".join(["{}"] * 5_000) + "]",
    "large numbers": "[" + ",".join(["1000"] * 3_000) + "]",
    "floats": "[" + ",".join(["1.5"] * 4_000) + "]",
    "short keys": "{" + ",".join(f'"{i}":0' for i in range(2_500)) + "}",
    "deep": "[" * 99 + "]" * 99,
    "records": json.dumps([{"id": i, "text": "hello", "done": False} for i in range(400)]),
}


@pytest.mark.parametrize("shape", PAYLOADS)
def test_event_bytes_is_at_least_what_the_history_holds(shape: str) -> None:
    count = 10
    frames = [PAYLOADS[shape]] * count
    # Once before measuring, so that what the first publication of a process allocates
    # for good (the ABCs' isinstance caches, the JSON scanner) is not taken for what the
    # history holds: a test run alone, or first, failed by that much.
    MemoryBackend(history_size=count, history_bytes=1 << 40).publish_now([_published(frames[0])])
    backend = MemoryBackend(history_size=count, history_bytes=1 << 40)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for payload in frames:
            backend.publish_now([_published(payload)])
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    measured = backend.kept_bytes
    print(f"\n{shape}: held {held / count:.0f} B/event, measured {measured / count:.0f}")
    assert held <= measured, f"{shape}: the history holds more than it counts"
    assert measured <= 2.5 * held, f"{shape}: counted far more than held"


def test_the_history_keeps_the_newest_events_within_its_bytes() -> None:
    size = event_bytes(_published(json.dumps("y" * 10_000)).published("abcd1234-100", 100))
    backend = MemoryBackend(history_size=1000, history_bytes=10 * size)
    published = [backend.publish_now([_published(json.dumps("y" * 10_000))])[0] for _ in range(25)]
    assert backend.kept_bytes == sum(event_bytes(e) for e in published[-10:]) <= 10 * size


async def test_a_resume_from_before_what_the_bytes_keep_is_not_recovered() -> None:
    size = event_bytes(_published(json.dumps("z" * 10_000)).published("abcd1234-100", 100))
    backend = MemoryBackend(history_size=1000, history_bytes=10 * size)
    await backend.start(lambda events: None)
    ids = [backend.publish_now([_published(json.dumps("z" * 10_000))])[0].id for _ in range(25)]
    assert await backend.read_after(ids[10], 1000) is None  # its successor is gone
    kept = await backend.read_after(ids[14], 1000)
    assert kept is not None and [e.id for e in kept] == ids[15:]
    # One event larger than the whole budget is not kept at all.
    backend.publish_now([_published(json.dumps("z" * 200_000))])
    assert backend.kept_bytes == 0
    assert await backend.read_after(ids[-1], 1000) is None
    assert await backend.read_after((await backend.position()).id, 1000) == []


def test_a_record_event_counts_its_values() -> None:
    values = {"id": 1, "text": "t" * 5000, "body": b"\0" * 3000}
    change = RecordChange(object, "create", "1", values)
    event = record_event(change, "messages", hidden=())
    assert event is not None
    assert event_bytes(event) > 8000


def test_history_size_zero_or_history_bytes_zero_keep_nothing() -> None:
    for size, limit in ((0, 1 << 20), (100, 0)):
        backend = MemoryBackend(history_size=size, history_bytes=limit)
        backend.publish_now([_published("1")])
        assert backend.kept_bytes == 0


def test_event_bytes_counts_an_updates_values_before() -> None:
    """An update carries the values it replaced: they are held in the history too."""
    values = {"id": 1, "text": "short"}
    plain = Event("update", "messages", "1", values, ("text",))
    before = Event("update", "messages", "1", values, ("text",), previous={"text": "x" * 100_000})
    assert event_bytes(before) >= event_bytes(plain) + 100_000
