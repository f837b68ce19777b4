"""A heartbeat, I/O-free: who is pinged, who is closed and with which code, given the
clocks; and when an identified session ends, as admission reads it."""

from __future__ import annotations

import datetime

from runtime.realtime.broker.lifecycle import SESSION_EXPIRED, Lifecycle, heartbeat_slices
from runtime.realtime.clients.admission import session_end
from runtime.realtime.connections.connection import Connection
from runtime.realtime.connections.flusher import Flusher
from runtime.realtime.connections.index import ConnectionIndex
from runtime.realtime.protocol import CloseCode
from runtime.realtime.stats import DeliveryStats, Faults

ENDS = 1_700_000_000.0  # a Unix time


def lifecycle(*conns: Connection) -> Lifecycle:
    index = ConnectionIndex()
    for conn in conns:
        index.add(conn)
    return Lifecycle(
        index, Flusher(), DeliveryStats(), Faults(), heartbeat=1.0, heartbeat_timeout=3.0
    )


def connection(transport: str, *, ends: float | None, session: str | None = "s") -> Connection:
    return Connection(
        user=None,
        session_hash=session,
        transport=transport,
        max_queue=10,
        pongs=transport == "websocket",
        session_ends=ends,
    )


def test_a_session_that_ends_is_closed_at_the_first_heartbeat_after() -> None:
    ws, sse = connection("websocket", ends=ENDS), connection("sse", ends=ENDS)
    forever = connection("websocket", ends=None)
    visitor = connection("sse", ends=None, session=None)
    beats = lifecycle(ws, sse, forever, visitor)
    for conn in (ws, forever):
        conn.last_seen = 100.0

    beats.beat(now=ENDS - 0.001, silent_since=99.0)  # the last heartbeat before the end
    assert all(conn.ping_due and not conn.closing for conn in (ws, sse, forever, visitor))
    for conn in (ws, sse, forever, visitor):
        conn.ping_due = False

    beats.beat(now=ENDS, silent_since=99.0)  # the first one at or after it
    for conn in (ws, sse):
        assert (conn.close_code, conn.close_reason) == (CloseCode.SESSION_ENDED, SESSION_EXPIRED)
        assert not conn.ping_due
    assert forever.ping_due and visitor.ping_due
    assert not forever.closing and not visitor.closing


def test_the_slices_of_an_interval_ping_each_connection_once() -> None:
    """A tick beats one slice; the slices of an interval, every connection once, and
    no slice holds all of them (a thousand pings at once stopped the loop)."""
    conns = [connection("websocket", ends=None) for _ in range(500)]
    beats = lifecycle(*conns)
    slices = heartbeat_slices(25.0)
    assert slices == 25
    pinged: list[int] = []
    for slot in range(slices):
        beats.beat(now=ENDS, silent_since=0.0, part=(slot, slices))
        due = [conn for conn in conns if conn.ping_due]
        pinged.append(len(due))
        for conn in due:
            conn.ping_due = False
    assert sum(pinged) == len(conns)
    assert max(pinged) < len(conns) // 5


def test_a_slice_closes_its_ended_sessions_alone() -> None:
    ended = [connection("sse", ends=ENDS) for _ in range(40)]
    beats = lifecycle(*ended)
    beats.beat(now=ENDS, silent_since=0.0, part=(0, 4))
    closed = {conn for conn in ended if conn.closing}
    assert closed and len(closed) < len(ended)
    for slot in (1, 2, 3):
        beats.beat(now=ENDS, silent_since=0.0, part=(slot, 4))
    assert all(conn.close_code == CloseCode.SESSION_ENDED for conn in ended)


def test_short_and_long_heartbeats_are_cut_in_slices_about_a_second_apart() -> None:
    assert [heartbeat_slices(h) for h in (0.2, 1.0, 2.6, 25.0, 3600.0)] == [1, 1, 3, 25, 60]


def test_an_ended_session_closes_with_4401_even_when_also_silent() -> None:
    silent = connection("websocket", ends=ENDS)
    silent.last_seen = 10.0
    lifecycle(silent).beat(now=ENDS + 5, silent_since=99.0)
    assert silent.close_code == CloseCode.SESSION_ENDED


def test_when_a_session_ends_as_identify_says_it() -> None:
    aware = datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    naive = datetime.datetime(2024, 5, 1, 10)  # UTC, as runtime.users stores it
    assert session_end((object(), "s", aware)) == aware.timestamp()
    assert session_end((object(), "s", naive)) == aware.timestamp()
    assert session_end((object(), "s", None)) is None
    assert session_end((object(), "s")) is None  # the two-value form: it does not end
