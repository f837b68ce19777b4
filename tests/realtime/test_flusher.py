"""The flusher, I/O-free: frames given in one turn go out in one write per connection at
its end; while an event is written through, each connection's frames go out as it is
given them, in order after what it had waiting, and a connection that fails there is
closed alone (over a real server: tests/integration/test_realtime_delivery.py)."""

from __future__ import annotations

from runtime.realtime.connections.flusher import Flusher
from runtime.realtime.protocol import CloseCode
from runtime.realtime.stats import Faults
from runtime.realtime.transports.wire import text_frame
from tests.realtime.fake_sockets import direct_connection

A, B, BAD = '{"n":1}', '{"n":2}', '{"type":"ack","data":"\ud800"}'  # BAD: no UTF-8


async def test_frames_of_one_turn_go_out_together_at_its_end() -> None:
    flusher = Flusher()
    conn, socket = direct_connection(Faults(), flusher)
    conn.send(A)
    conn.send(B)
    assert socket.written == [] and not flusher.idle
    flusher.flush()  # as the end of the loop's turn does
    assert socket.written == [text_frame(A) + text_frame(B)] and flusher.idle


async def test_written_through_each_frame_goes_out_at_once() -> None:
    flusher, faults = Flusher(), Faults()
    (one, one_socket), (two, two_socket) = (
        direct_connection(faults, flusher),
        direct_connection(faults, flusher),
    )
    with flusher.writing_through():
        assert not flusher.idle
        one.send(A)
        assert one_socket.written == [text_frame(A)] and two_socket.written == []
        two.send(A)
        one.send(B)
        assert one_socket.written == [text_frame(A), text_frame(B)]
        assert two_socket.written == [text_frame(A)]
    assert flusher.idle and not one.marked and one.queue == []
    one.send(A)  # afterwards: at the end of the turn again
    assert one_socket.written == [text_frame(A), text_frame(B)]


async def test_written_through_a_connection_that_fails_is_closed_alone() -> None:
    flusher, faults = Flusher(), Faults()
    (bad, bad_socket), (good, good_socket) = (
        direct_connection(faults, flusher),
        direct_connection(faults, flusher),
    )
    with flusher.writing_through():
        bad.send(BAD)
        good.send(A)
    assert bad_socket.written == [] and good_socket.written == [text_frame(A)]
    assert (bad.close_code, bad.close_reason) == (CloseCode.INTERNAL_ERROR, "internal error")
    assert faults.connection_counts == {"write": 1}


async def test_a_connection_that_cannot_take_more_is_left_to_its_task() -> None:
    """Its socket's buffer is full: its frames stay queued for the transport's task (which
    waits until the socket drains), in order, whether written through or not."""
    flusher = Flusher()
    conn, socket = direct_connection(Faults(), flusher)
    socket.full = True
    with flusher.writing_through():
        conn.send(A)
    conn.send(B)
    assert socket.written == [] and conn.blocked and conn.queue == [A, B]


async def test_written_through_after_what_was_waiting_in_order() -> None:
    """A frame given while others wait for the end of the turn goes out after them."""
    flusher = Flusher()
    conn, socket = direct_connection(Faults(), flusher)
    conn.send(A)
    with flusher.writing_through():
        conn.send(B)
        assert socket.written == []
    flusher.flush()
    assert socket.written == [text_frame(A) + text_frame(B)] and conn.queue == []


async def test_written_through_the_queue_bounds_still_hold() -> None:
    """A frame past the connection's byte budget is not written through: the
    connection is closed as too slow a reader, as when it is queued."""
    flusher = Flusher()
    conn, socket = direct_connection(Faults(), flusher)
    conn.max_queue_bytes = len(A)
    with flusher.writing_through():
        assert conn.send(A)
        assert not conn.send(A + " ")
    assert socket.written == [text_frame(A)]
    assert conn.close_code == CloseCode.TOO_SLOW and conn.queue == []
