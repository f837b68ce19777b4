"""Rate limits on top of `limits`: a named limit checked and counted per key, in memory
or in Redis (limits' own `redis://` storage), where every process counts alike.

The storage is synchronous: callers on the event loop run it in a thread. A Redis that
stops answering while serving is an outage, not a reason to refuse every login nor to
stop counting: until it answers again, each process counts in memory of its own (said
once in the log).

A limit checked on every request and counted in this process (`api.rate_limit` without
Redis) is a `LocalLimit` instead: limits' memory storage starts a thread every 10 ms
that scans every key, a cost that grows with the keys, and its moving windows keep a
timestamp per request. A `LocalLimit` keeps, per key and limit, the counts of two
consecutive windows (limits' sliding-window counter: the previous window's count
weighed by how much of it the moving window still covers), and at most `max_keys`
keys, the least recently used dropped first.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .database_url import redacted

__all__ = ["LocalLimit", "RateLimit", "StorageUnavailable", "make_storage", "storage_uri"]

log = logging.getLogger("runtime")

TIMEOUT = 5.0  # seconds a Redis command may take, as for the broker
_T = TypeVar("_T")


class StorageUnavailable(Exception):
    """The rate limits' Redis cannot be reached as the app starts: one line naming the
    setting that named it."""


def storage_uri(setting: str, broker: str) -> tuple[str, str]:
    """The storage `auth.rate_limit_storage` names, and the setting that names it: the
    setting if given; else the broker's Redis where `realtime.broker` is one, so that
    every process counts the same attempts; else memory://."""
    if setting:
        return setting, "auth.rate_limit_storage"
    if broker.startswith(("redis://", "rediss://")):
        return broker, "realtime.broker"
    if broker.startswith("unix://"):  # redis-py's socket URL; limits names it so
        return "redis+unix://" + broker.removeprefix("unix://"), "realtime.broker"
    return "memory://", "auth.rate_limit_storage"


def make_storage(uri: str, key: str = "auth.rate_limit_storage") -> Storage:
    """A `limits` storage from a URI such as memory:// or redis://host:6379/0; a Redis
    one is reached now (StorageUnavailable naming `key` if not)."""
    if uri == "memory://":
        return MemoryStorage()
    storage = storage_from_string(
        uri,
        wrap_exceptions=True,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
    )
    assert isinstance(storage, Storage), "an asyncio storage URI was given"
    if not storage.check():
        raise StorageUnavailable(f"{key}: cannot reach {redacted(uri)} (rate limits)")
    return storage


class RateLimit:
    """One or more limits (e.g. "5/minute;100/day") shared by every key of one kind."""

    def __init__(self, spec: str, *, storage: Storage, namespace: str) -> None:
        self._items: list[RateLimitItem] = parse_many(spec)
        self._limiter = MovingWindowRateLimiter(storage)
        self._fallback = MovingWindowRateLimiter(MemoryStorage())  # while Redis is out
        self._namespace = namespace
        self._down = False

    def retry_after(self, key: str) -> int:
        """0 if `key` may go on, else the seconds until it may (at least 1)."""
        return self._with_limiter(lambda limiter: self._retry_after(limiter, key))

    def take(self, key: str) -> int:
        """Count one request against every limit, if each has room: 0; else the seconds
        until `key` may go on (at least 1), and the request is not counted by the
        limits it is over."""

        def take(limiter: MovingWindowRateLimiter) -> int:
            wait = 0.0
            for item in self._items:
                if not limiter.hit(item, self._namespace, key):
                    wait = max(wait, self._wait(limiter, item, key))
            return math.ceil(wait)

        return self._with_limiter(take)

    def hit(self, key: str) -> None:
        """Count one attempt against every limit."""

        def hit(limiter: MovingWindowRateLimiter) -> None:
            for item in self._items:
                limiter.hit(item, self._namespace, key)

        self._with_limiter(hit)

    def reset(self, key: str) -> None:
        def clear(limiter: MovingWindowRateLimiter) -> None:
            for item in self._items:
                limiter.clear(item, self._namespace, key)

        self._with_limiter(clear)

    def _retry_after(self, limiter: MovingWindowRateLimiter, key: str) -> int:
        wait = 0.0
        for item in self._items:
            if not limiter.test(item, self._namespace, key):
                wait = max(wait, self._wait(limiter, item, key))
        return math.ceil(wait)

    def _wait(self, limiter: MovingWindowRateLimiter, item: RateLimitItem, key: str) -> float:
        """Seconds until `item` has room for `key` (at least 1): its window's reset."""
        reset_at, _remaining = limiter.get_window_stats(item, self._namespace, key)
        return max(reset_at - time.time(), 1.0)

    def _with_limiter(self, use: Callable[[MovingWindowRateLimiter], _T]) -> _T:
        """`use` on the storage; on this process's memory while it cannot be reached."""
        try:
            result = use(self._limiter)
        except StorageError as error:
            if not self._down:
                log.error("rate limits: counted per process until Redis answers: %s", error)
            self._down = True
            return use(self._fallback)
        if self._down:
            log.warning("rate limits: counted in Redis again")
        self._down = False
        return result


class LocalLimit:
    """One or more limits ("50/second;1000/minute") per key, counted in this process
    without I/O: `take` on the event loop costs a few microseconds."""

    def __init__(self, spec: str, *, max_keys: int = 100_000) -> None:
        self._items = [(item.amount, float(item.get_expiry())) for item in parse_many(spec)]
        self._max_keys = max_keys
        # key -> per limit [the current window's number, its count, the previous count]
        self._counts: OrderedDict[str, list[list[float]]] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> int:
        """Count one request against every limit, if each has room: 0; else the seconds
        until `key` may go on (at least 1), and nothing is counted."""
        now = time.monotonic() if now is None else now
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [[0.0, 0.0, 0.0] for _ in self._items]
            if len(self._counts) > self._max_keys:
                self._counts.popitem(last=False)
        else:
            self._counts.move_to_end(key)
        wait = 0.0
        for (amount, period), count in zip(self._items, counts, strict=True):
            window = now // period
            if window != count[0]:  # a new window: the last one's count is the previous
                count[2] = count[1] if window == count[0] + 1 else 0.0
                count[0], count[1] = window, 0.0
            covered = 1.0 - (now - window * period) / period  # of the previous window
            if count[2] * covered + count[1] + 1 > amount:
                wait = max(wait, _until_room(amount, period, count, now - window * period))
        if wait:
            return math.ceil(wait)
        for count in counts:
            count[1] += 1
        return 0

    def __len__(self) -> int:
        return len(self._counts)


def _until_room(amount: int, period: float, count: list[float], elapsed: float) -> float:
    """Seconds until one more request fits: the previous window's weight falls as the
    moving window leaves it; past the current window's end, its count is the previous."""
    current, previous = count[1], count[2]
    if current + 1 <= amount and previous:
        # previous * (1 - (elapsed + t) / period) + current + 1 <= amount
        return max(period * (1.0 - (amount - current - 1) / previous) - elapsed, 1.0)
    # Not before this window ends; then current * (1 - t / period) + 1 <= amount.
    rest = period - elapsed
    if current + 1 <= amount:
        return max(rest, 1.0)
    return max(rest + period * (1.0 - (amount - 1) / current), 1.0)
