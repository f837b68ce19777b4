"""One connection's failure stays with it, I/O-free: the flusher writes every other
marked connection, and fan-out queues every other connection's frame, whatever one of
them raises; the one that raised is closed with 1011 and counted. (Over a real server:
tests/integration/test_connection_isolation.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from runtime.realtime.channels import Channel
from runtime.realtime.connections.connection import Connection, HeldEvent
from runtime.realtime.connections.flusher import Flusher
from runtime.realtime.connections.index import ConnectionIndex
from runtime.realtime.events import custom_event
from runtime.realtime.fanout.delivery import Fanout
from runtime.realtime.fanout.registry import SubscriptionRegistry
from runtime.realtime.patterns import parse_pattern
from runtime.realtime.protocol import CloseCode
from runtime.realtime.stats import DeliveryStats, Faults
from runtime.realtime.transports.wire import text_frame
from tests.realtime.fake_sockets import direct_connection


async def test_the_flusher_writes_every_other_connection_whatever_one_raises() -> None:
    faults, flusher = Faults(), Flusher()
    first, first_socket = direct_connection(faults, flusher)
    others = [direct_connection(faults, flusher) for _ in range(3)]
    # A frame that UTF-8 cannot encode: the first connection's sink raises on it.
    first.send('{"type":"ack","data":"\ud800"}')
    for conn, _ in others:
        conn.send('{"type":"pong"}')
    flusher.flush()  # as the end of the loop's turn does
    assert [conn.marked for conn, _ in [(first, None), *others]] == [False] * 4
    assert [socket.written for _, socket in others] == [[text_frame('{"type":"pong"}')]] * 3
    assert first_socket.written == []
    assert (first.close_code, first.close_reason) == (CloseCode.INTERNAL_ERROR, "internal error")
    assert first.queue == [] and faults.connection_counts == {"write": 1}
    # Nothing is left stuck: the next turn's frames go out as before.
    others[0][0].send('{"type":"ping"}')
    flusher.flush()
    assert others[0][1].written[-1] == text_frame('{"type":"ping"}')


class _Failing(Connection):
    """A connection whose queue raises (a bug, say): `send` or `hold`."""

    __slots__ = ("failing",)

    def send(self, frame: str) -> bool:
        if self.failing == "send":
            raise RuntimeError("its queue broke")
        return super().send(frame)

    def hold(self, event: HeldEvent) -> bool:
        if self.failing == "hold":
            raise RuntimeError("its queue broke")
        return super().hold(event)


# An event for every connection (no collection) is never held back: no "hold" for it.
@pytest.mark.parametrize(
    ("failing", "collection"), [("send", "room"), ("send", None), ("hold", "room")]
)
def test_fan_out_queues_every_other_connection_whatever_one_raises(
    failing: str, collection: str | None
) -> None:
    faults, registry, index = Faults(), SubscriptionRegistry[Connection](), ConnectionIndex()
    channels = {"room": Channel("room", read_rule="public")}
    fanout = Fanout(registry, index, dict, DeliveryStats(), faults, channels)
    conns: list[Any] = []
    for i in range(3):
        conn = _Failing(user=None, session_hash=None, transport="test", max_queue=100)
        conn.failing = failing if i == 0 else ""
        conn.faults = faults
        index.add(conn)
        # The failing one's subscription is under way: its events are held back.
        registry.add(conn, parse_pattern("room"), held=i == 0 and failing == "hold")
        conns.append(conn)
    fanout.deliver(custom_event("said", {"n": 1}, collection=collection).published("e-1", 1))
    assert [len(conn.queue) for conn in conns] == [0, 1, 1]
    assert conns[0].close_code == CloseCode.INTERNAL_ERROR
    assert faults.connection_counts == {"queue": 1} and faults.counts == {}
    fanout.deliver(custom_event("said", {"n": 2}, collection=collection).published("e-2", 2))
    assert [len(conn.queue) for conn in conns] == [0, 2, 2]
    assert faults.connection_counts == {"queue": 1}  # counted once, as it closes
