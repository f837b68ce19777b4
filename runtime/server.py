"""Serving an app with Hypercorn, stopping cleanly on SIGINT and SIGTERM.

`run(app)` from synchronous code (a script's `if __name__ == "__main__":`, the command
line); `await serve(app)` from a coroutine already on an event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from quart import Quart

from .access_log import ACCESS_LOG_FORMAT, SafeAccessLogger
from .adapters import hypercorn

__all__ = ["run", "serve"]

log = logging.getLogger("runtime.server")


async def serve(
    app: Quart,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    sock: socket.socket | None = None,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve `app` until a stop signal (or `stop` is set). `ready(port)` runs once serving.

    `sock`, an already bound and listening socket, replaces `host` and `port` (tests bind
    port 0 and read the port the system chose).
    """
    config = HypercornConfig()
    own_socket = sock is None
    if sock is None:  # bound here so that port 0 works and the real port can be told
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    # Hypercorn closes the socket it is given: give it a duplicate, the caller keeps `sock`.
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    port = sock.getsockname()[1]
    config.accesslog = logging.getLogger("runtime.access")
    config.logger_class = SafeAccessLogger  # escapes what comes from the request
    config.access_log_format = ACCESS_LOG_FORMAT
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 5.0
    realtime = app.extensions.get("realtime")
    compression = True  # Hypercorn's own default, for an app without realtime
    if realtime is not None:
        # Past the soft limit a frame gets an error frame; past this one, close 1009.
        config.websocket_max_message_size = 4 * realtime.config.max_message_size
        compression = realtime.config.websocket_compression
    hypercorn.install(max_message_size=config.websocket_max_message_size, compression=compression)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)  # fails off the main thread: fine

    async def shutdown_trigger() -> None:
        await stop.wait()
        # app.extensions["shutdown_hooks"] run before Hypercorn stops: realtime closes its
        # connections with 1001 at once rather than letting Hypercorn end them with 1011.
        log.info("stopping")
        for hook in app.extensions.get("shutdown_hooks", []):
            await hook()

    if ready is not None:

        @app.before_serving
        async def _announce() -> None:
            ready(port)

    try:
        await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger)
    finally:
        if own_socket:
            sock.close()


def run(
    app: Quart,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    sock: socket.socket | None = None,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Serve `app` until SIGINT or SIGTERM: `serve()` on an event loop of its own.

    `ready(port)` runs once serving; without it the address is logged (`runtime.server`).
    """

    def announce(bound_port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        log.info("serving on http://%s:%d/", shown, bound_port)

    collect_garbage_for_serving()
    asyncio.run(serve(app, host, port, sock=sock, ready=ready or announce))


# Python's cyclic garbage collector, for a process that serves: allocations between
# the youngest generation's collections (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def collect_garbage_for_serving() -> None:
    """Set the garbage collector up for the process's serving life (`run` does, once per
    process). What exists now (the modules, the app, its models) is frozen, out of every
    later collection; the youngest generation is collected every 10,000 allocations, not
    700. With Python's defaults a server with 1,000 subscribers promoted its live objects
    so often that full collections came every few seconds and stopped the event loop for
    60 to 180 ms each, the p99 of a steady write rate (benchmarks: docs/performance.md);
    now a young collection takes a few milliseconds and full ones are rare."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
