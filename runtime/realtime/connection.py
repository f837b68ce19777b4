"""One client connection as the broker sees it: identity, auth context, send queue.

The broker appends encoded frames with `send()`, which never waits; the transport drains
them with `drain()`. A reader that falls `max_queue` frames behind is closed as too slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import deque
from typing import Any

from .protocol import CloseCode

__all__ = ["TOO_SLOW_REASON", "Connection"]

TOO_SLOW_REASON = "too slow: send queue full"


class Connection:
    __slots__ = (
        "batch",
        "close_code",
        "close_reason",
        "closed",
        "id",
        "last_seen",
        "max_queue",
        "queue",
        "rejected",
        "session_hash",
        "transport",
        "user",
        "wakeup",
    )

    def __init__(
        self,
        *,
        user: Any,
        session_hash: str | None,
        transport: str,
        max_queue: int,
        batch: bool = False,
    ) -> None:
        self.id = secrets.token_urlsafe(12)
        self.user = user
        self.session_hash = session_hash
        self.transport = transport
        self.batch = batch
        self.max_queue = max_queue
        self.queue: deque[str] = deque()
        self.wakeup = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = asyncio.Event()  # set by close(): the transport should finish up
        self.last_seen = time.monotonic()
        self.rejected = 0  # messages refused by the rate limit in the current window

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.transport} user={self.user_id!r}>"

    @property
    def user_id(self) -> Any:
        return self.user.id if self.user is not None else None

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    def send(self, frame: str, *, bounded: bool = True) -> bool:
        """Queue an encoded frame; False if the connection is closing or now too slow.

        Replies and replays are sent unbounded: they are bounded by the history already.
        """
        if self.close_code is not None:
            return False
        if bounded and len(self.queue) >= self.max_queue:
            self.close(CloseCode.TOO_SLOW, TOO_SLOW_REASON)
            return False
        self.queue.append(frame)
        self.wakeup.set()
        return True

    def close(self, code: int, reason: str = "") -> None:
        """Ask the transport to close; what is still queued is dropped."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.queue.clear()
            self.wakeup.set()
            self.closed.set()

    async def wait(self, deadline: float) -> None:
        """Until a frame is queued, the connection closes, or the loop's time `deadline`."""
        if self.queue or self.close_code is not None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self.wakeup.wait()

    def drain(self) -> list[str]:
        frames = list(self.queue)
        self.queue.clear()
        self.wakeup.clear()
        return frames
