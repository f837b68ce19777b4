"""Supervised background tasks: a task that fails is logged and restarted, never lost.

Listeners that died silently while clients stopped getting events were a classic bug
of python-socketio and broadcaster; here every long-running task of realtime runs under
`supervise()`: an exception is logged at ERROR once (with its traceback), counted, and
the task restarted after a capped, growing delay. Cancellation always goes through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["supervise"]

log = logging.getLogger("runtime.realtime")


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    restarts: dict[str, int],
    *,
    first_delay: float = 0.05,
    max_delay: float = 10.0,
) -> None:
    """Run `run()` until it returns, restarting it whenever it raises."""
    loop = asyncio.get_running_loop()
    delay = first_delay
    while True:
        started = loop.time()
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            restarts[name] = restarts.get(name, 0) + 1
            if loop.time() - started > max_delay:
                delay = first_delay  # it ran fine for a while: start the backoff over
            log.exception("realtime: task %r failed; restarting in %.2fs", name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
