"""Publishing from the load client: HTTP POSTs over a few keep-alive connections.

The runtime is written to through its records API (`POST /api/collections/messages/
records`, logged in); a peer through `POST /publish`, whose body is the frame it sends
on. Either way an event's text starts with `b<8-digit sequence number>`, so that the
load client can tell events apart (latency) and the frames are the same size.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from .httpwire import HttpConnection

__all__ = ["PublishTarget", "Publisher", "event_text", "peer_frame", "sequence_numbers"]

_SEQUENCE = re.compile(rb'"text":"b(\d{8}) ')
_RECORD_ID = re.compile(rb'"id":(\d+)')


def event_text(sequence: int, length: int) -> str:
    head = f"b{sequence:08d} "
    return head + "x" * max(0, length - len(head))


def sequence_numbers(data: bytes) -> list[int]:
    """The sequence numbers of the events in a message (a frame or a batch)."""
    return [int(found) for found in _SEQUENCE.findall(data)]


def peer_frame(sequence: int, text_length: int) -> bytes:
    """What a peer sends on: shaped and sized like the runtime's event frame."""
    frame = {
        "type": "event",
        "id": f"bench-{sequence}",
        "collection": "messages",
        "topic": f"messages/{sequence}",
        "action": "create",
        "record": {
            "id": sequence,
            "text": event_text(sequence, text_length),
            "author": 1,
            "created_at": "2026-01-01T00:00:00.000000",
        },
    }
    return json.dumps(frame, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class PublishTarget:
    port: int
    path: str  # "/publish" or "/api/collections/messages/records"
    ours: bool
    text_length: int
    cookie: str | None = None


class Publisher:
    def __init__(self, target: PublishTarget, concurrency: int = 4) -> None:
        self.target = target
        self._idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
        for _ in range(concurrency):
            self._idle.put_nowait(HttpConnection(target.port))
        self.concurrency = concurrency
        self.next_sequence = 1
        self.failures = 0
        self.record_ids: list[int] = []  # ours: the ids the server gave, in reply order
        self._headers = {"Content-Type": "application/json"}
        if target.cookie:
            self._headers["Cookie"] = target.cookie

    def take_sequence(self) -> int:
        sequence = self.next_sequence
        self.next_sequence += 1
        return sequence

    def _body(self, sequence: int) -> bytes:
        if self.target.ours:
            text = event_text(sequence, self.target.text_length)
            return json.dumps({"text": text}).encode()
        return peer_frame(sequence, self.target.text_length)

    async def publish(self, sequence: int) -> None:
        connection = await self._idle.get()
        try:
            response = await connection.request(
                "POST", self.target.path, self._body(sequence), self._headers
            )
        except Exception:
            self.failures += 1
            return
        finally:
            self._idle.put_nowait(connection)
        if response.status >= 300:
            self.failures += 1
        elif self.target.ours and (found := _RECORD_ID.search(response.body)):
            self.record_ids.append(int(found.group(1)))

    async def burst(self, count: int) -> None:
        """`count` events as fast as the server takes them (`concurrency` in flight)."""
        sequences = [self.take_sequence() for _ in range(count)]

        async def worker(mine: list[int]) -> None:
            for sequence in mine:
                await self.publish(sequence)

        shares = [sequences[i :: self.concurrency] for i in range(self.concurrency)]
        await asyncio.gather(*(worker(share) for share in shares if share))

    async def paced(
        self, count: int, per_second: float, on_scheduled: Callable[[int, float], None]
    ) -> None:
        """`count` events at a steady rate; `on_scheduled(sequence, time)` is told each
        one's scheduled time (latency counts from it, so a late send is not hidden)."""
        start = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()
        for i in range(count):
            due = start + i / per_second
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sequence = self.take_sequence()
            on_scheduled(sequence, due)
            task = asyncio.create_task(self.publish(sequence))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()


async def log_in(port: int, username: str, password: str) -> str:
    """Log in to the runtime; returns the `Cookie` header value."""
    connection = HttpConnection(port)
    try:
        body = json.dumps({"username": username, "password": password}).encode()
        response = await connection.request(
            "POST", "/auth/login", body, {"Content-Type": "application/json"}
        )
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"login failed: {response.status} {response.body[:200]!r}")
    cookie = response.headers.get("set-cookie", "")
    return cookie.split(";", 1)[0]
