"""The per-connection message rate limit: a moving window per limit, kept on the
connection, bounded by the limit's amount."""

from __future__ import annotations

from runtime.realtime.connections.message_limit import MessageLimit


def test_a_moving_window() -> None:
    window = MessageLimit("3/10second").window()
    for t in (0.0, 1.0, 2.0):
        assert window.retry_after(now=t) == 0
        window.hit(now=t)
    assert window.retry_after(now=2.5) == 8  # the first hit leaves the window at 10.0
    assert window.retry_after(now=9.9) == 1  # at least a second
    assert window.retry_after(now=10.1) == 0  # the first hit has left
    window.hit(now=10.1)
    assert window.retry_after(now=10.2) == 1  # the one at 1.0 leaves at 11.0


def test_a_cost_of_several_and_several_limits() -> None:
    window = MessageLimit("5/10second;8/minute").window()
    window.hit(cost=4, now=0.0)
    assert window.retry_after(cost=2, now=1.0) == 9  # 4 + 2 > 5 until 10.0
    assert window.retry_after(cost=1, now=1.0) == 0
    window.hit(cost=1, now=1.0)
    window.hit(cost=3, now=11.0)  # the 10-second window is clear again; the minute has 8
    assert window.retry_after(now=12.0) == 48  # the minute frees its oldest at 60.0
    # More than a limit's amount counts as that amount: room once the minute's hits of
    # 11.0 leave it, and nothing waits once both windows are clear.
    assert window.retry_after(cost=50, now=61.0) == 10
    assert window.retry_after(cost=50, now=71.5) == 0


def test_memory_stays_within_the_amounts() -> None:
    window = MessageLimit("100/10second").window()
    assert window._hits is None  # nothing until the first message
    for t in range(10_000):
        window.hit(cost=7, now=t / 1000)
    assert window._hits is not None and len(window._hits[0]) == 100
