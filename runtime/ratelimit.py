"""Rate limits on top of `limits`: a named limit checked and counted per key."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

__all__ = ["RateLimit", "make_storage"]


def make_storage(uri: str) -> Storage:
    """A `limits` storage from a URI such as memory:// or redis://host:6379/0."""
    storage = storage_from_string(uri)
    assert isinstance(storage, Storage), "an asyncio storage URI was given"
    return storage


class RateLimit:
    """One or more limits (e.g. "5/minute;100/day") shared by every key of one kind."""

    def __init__(self, spec: str, *, storage: Storage, namespace: str) -> None:
        self._items: list[RateLimitItem] = parse_many(spec)
        self._limiter = MovingWindowRateLimiter(storage)
        self._namespace = namespace

    def retry_after(self, key: str) -> int:
        """0 if `key` may go on, else the seconds until it may (at least 1)."""
        wait = 0.0
        for item in self._items:
            if not self._limiter.test(item, self._namespace, key):
                reset_at, _remaining = self._limiter.get_window_stats(item, self._namespace, key)
                wait = max(wait, reset_at - time.time(), 1.0)
        return math.ceil(wait)

    def hit(self, key: str) -> None:
        """Count one attempt against every limit."""
        for item in self._items:
            self._limiter.hit(item, self._namespace, key)

    def reset(self, key: str) -> None:
        for item in self._items:
            self._limiter.clear(item, self._namespace, key)
