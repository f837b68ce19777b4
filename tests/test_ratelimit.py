"""Rate limits in `limits`' Redis storage: counted there, and in memory of the process's
own while Redis does not answer (a real redis-server, stopped and started)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.ratelimit import LocalLimit, RateLimit, make_storage
from tests.redis_server import RedisServer, start_redis


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.close()


def test_a_limit_counts_in_redis_and_in_memory_while_redis_is_out(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    storage = make_storage(own_redis.url)
    first, second = (RateLimit("2/minute", storage=storage, namespace="t") for _ in range(2))
    first.hit("ann")
    second.hit("ann")  # another process, the same Redis: the same count
    assert first.retry_after("ann") >= 1 and second.retry_after("bob") == 0
    own_redis.stop()
    assert first.retry_after("ann") == 0  # this process's memory has not counted her yet
    first.hit("ann")
    first.hit("ann")
    assert first.retry_after("ann") >= 1  # but counts meanwhile
    assert caplog.text.count("counted per process until Redis answers") == 1
    own_redis.start()  # empty: it keeps nothing on disk
    first.hit("carl")
    second.hit("carl")
    assert first.retry_after("carl") >= 1  # in Redis again
    assert "counted in Redis again" in caplog.text


def comes_back_when_told(limit: LocalLimit, key: str, now: float) -> float:
    """`key` is refused at `now`; one second before the wait it is told, still refused;
    at the wait, let through. The time it was let through."""
    wait = limit.take(key, now)
    assert wait >= 1
    assert limit.take(key, now + wait - 1) > 0
    assert limit.take(key, now + wait) == 0
    return now + wait


def test_a_local_limit_is_exact_within_a_window_and_says_when_to_come_back() -> None:
    limit = LocalLimit("3/minute")
    start = 600.0  # a window's start: windows are whole periods
    assert [limit.take("a", start + i) for i in range(3)] == [0, 0, 0]
    assert limit.take("b", start + 3) == 0  # another key counts apart
    # Refused requests are not counted: the wait does not grow with the refusals.
    assert limit.take("a", start + 3) == limit.take("a", start + 3) > 0
    comes_back_when_told(limit, "a", start + 3)


def test_a_local_limit_slides_the_last_windows_count_out() -> None:
    """The previous window counts for the part of it the moving window still covers."""
    limit = LocalLimit("10/minute")
    start = 600.0
    assert [limit.take("a", start + 50 + i * 0.1) for i in range(10)] == [0] * 10
    # 30 s into the next window, half of the last one is covered: 10 * 0.5 = 5 counted.
    now = start + 60 + 30
    assert [limit.take("a", now) for _ in range(5)] == [0] * 5
    assert comes_back_when_told(limit, "a", now) == now + 6  # 10 * 0.4 + 5 + 1 = 10
    # Two windows on, nothing of the first one counts.
    assert [limit.take("a", start + 240) for _ in range(10)] == [0] * 10


def test_a_local_limit_is_held_to_every_limit_it_names() -> None:
    limit = LocalLimit("2/second;3/minute")
    start = 600.0
    assert [limit.take("a", start), limit.take("a", start + 0.1)] == [0, 0]
    assert limit.take("a", start + 0.2) > 0  # the second's
    assert limit.take("a", start + 3) == 0
    assert limit.take("a", start + 4) > 30  # the minute's: 3 in it


def test_a_local_limit_keeps_at_most_max_keys() -> None:
    """A client that rotates its addresses cannot grow it: the least recently used key
    goes first."""
    limit = LocalLimit("1/minute", max_keys=100)
    for i in range(1000):
        limit.take(f"address:{i}", 600.0)
    assert len(limit) == 100
    assert limit.take("address:999", 601.0) > 0  # the newest are kept
    assert limit.take("address:0", 601.0) == 0  # the oldest was forgotten
