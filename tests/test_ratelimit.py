"""Rate limits in `limits`' Redis storage: counted there, and in memory of the process's
own while Redis does not answer (a real redis-server, stopped and started)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.ratelimit import RateLimit, make_storage
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
