"""Test helpers: one timeout constant, and a real Hypercorn server on a loopback port."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from typing import Any

import httpx
from quart import Quart

from runtime.server import serve

__all__ = ["TIMEOUT", "LiveServer", "assert_error"]

# One timeout for every wait in the suite; slow machines scale it, never tests' sleeps.
TIMEOUT = 5.0 * float(os.environ.get("RUNTIME_TESTS_TIMEOUT_FACTOR", "1"))


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    """`response` is the contract's JSON error: this status and code, a message, no trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, str] = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in response.text
    return error


class LiveServer:
    """`app` served by Hypercorn in a thread of its own, on 127.0.0.1 and a free port."""

    def __init__(self, app: Quart, port: int = 0) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))  # a given port: to restart "the same" server
        self.sock.listen(512)
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(TIMEOUT):
            raise RuntimeError(f"server did not start: {self._error!r}")
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(TIMEOUT * 2)
        self.sock.close()
        if self._thread.is_alive():
            raise RuntimeError("server did not stop")

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the server's loop thread and return its result."""
        assert self._loop is not None
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = fn(*args)
            except BaseException as exc:
                box["error"] = exc
            done.set()

        self._loop.call_soon_threadsafe(run)
        if not done.wait(TIMEOUT):
            raise TimeoutError("server loop did not answer")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    async def run(self, coro: Any) -> Any:
        """Await `coro` on the server's loop (from a test's own loop)."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), TIMEOUT)

    @property
    def broker(self) -> Any:
        return self.app.extensions["realtime"].broker

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await serve(
            self.app, sock=self.sock, ready=lambda _port: self._ready.set(), stop=self._stop
        )
