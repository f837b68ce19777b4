"""Test helpers: one timeout constant, and real servers (Hypercorn, uvicorn, the command
line's) on a loopback port."""

from __future__ import annotations

import asyncio
import math
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import httpx
import uvicorn
from quart import Quart

from runtime.server import serve

__all__ = [
    "FAST_PATH",
    "TIMEOUT",
    "LiveServer",
    "ServerProcess",
    "ThreadedServer",
    "UvicornServer",
    "assert_error",
    "free_port",
    "metrics_until",
]

# One timeout for every wait in the suite; slow machines scale it, never tests' sleeps.
TIMEOUT = 5.0 * float(os.environ.get("RUNTIME_TESTS_TIMEOUT_FACTOR", "1"))

# Whether the servers of the tests write realtime frames straight to their sockets
# (`realtime.fast_path`). `make test` runs the realtime and integration tests a second
# time with RUNTIME_TESTS_FAST_PATH=off: every frame through the ASGI send, as on
# another server than Hypercorn.
FAST_PATH = os.environ.get("RUNTIME_TESTS_FAST_PATH", "on") != "off"

REPOSITORY = Path(__file__).resolve().parent.parent  # the checkout these tests are in


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    """`response` is the contract's JSON error: this status and code, a message, no trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, str] = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in response.text
    return error


class ThreadedServer:
    """`app` served in a thread of its own, on its own event loop, on 127.0.0.1 and a
    free port. A subclass names the server: `_serve()` runs it in the thread (calling
    `_ready.set()` once it accepts connections), `_shutdown()` asks it to stop."""

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
        self._loop: asyncio.AbstractEventLoop | None = None  # set by _serve, on its loop
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def __enter__(self) -> Self:
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
        if self._loop is not None and self._thread.is_alive():
            self._shutdown()
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
            self._serve()
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def _serve(self) -> None:
        raise NotImplementedError

    def _shutdown(self) -> None:
        raise NotImplementedError


class LiveServer(ThreadedServer):
    """`app` served by Hypercorn as `python -m runtime serve` serves it
    (`runtime.server.serve`): realtime writes straight to the socket there."""

    def __init__(self, app: Quart, port: int = 0) -> None:
        super().__init__(app, port)
        self._stop = asyncio.Event()  # bound to the server's loop when it first waits

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        await serve(
            self.app, sock=self.sock, ready=lambda _port: self._ready.set(), stop=self._stop
        )

    def _shutdown(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._stop.set)


class UvicornServer(ThreadedServer):
    """`app` served by uvicorn, the field's standard ASGI server. Realtime has no fast
    path there (runtime/adapters/hypercorn.py): every frame goes through the ASGI send."""

    def __init__(self, app: Quart, port: int = 0) -> None:
        super().__init__(app, port)
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="h11",
            # wsproto, not websockets: it is what uvicorn picks itself for an app installed
            # with the runtime's own dependencies (Hypercorn brings wsproto; websockets is
            # a test extra), and the tests' client is websockets, so the two ends of the
            # connection are two implementations. uvicorn's "websockets" is websockets'
            # deprecated legacy API (a DeprecationWarning when imported).
            ws="wsproto",
            lifespan="on",  # Quart's before_serving starts realtime, after_serving stops it
            log_config=None,  # the process's logging stays as the suite set it
            access_log=False,
            # An SSE stream still open holds uvicorn's shutdown until it ends: bounded.
            timeout_graceful_shutdown=math.ceil(TIMEOUT),  # typed int
        )
        self._server = _AnnouncingServer(config, self._ready.set)

    def _serve(self) -> None:
        # Not Server.run(): on Python 3.11 it runs the loop with debug=False, which would
        # turn PYTHONASYNCIODEBUG off for the server's loop.
        with asyncio.Runner(loop_factory=self._server.config.get_loop_factory()) as runner:
            runner.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.serve(sockets=[self.sock])

    def _shutdown(self) -> None:
        self._server.should_exit = True  # as its signal handlers do: read once a tick


class _AnnouncingServer(uvicorn.Server):
    """uvicorn's server, calling `started()` as soon as it accepts connections (it sets
    `.started` then, with nothing to wait on)."""

    def __init__(self, config: uvicorn.Config, started: Callable[[], object]) -> None:
        super().__init__(config)
        self._announce = started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._announce()


class ServerProcess:
    """`python -m runtime serve` in a process of its own (to measure it, or signal it),
    on 127.0.0.1 and a free port, configured by `config` and `RUNTIME_*` variables, run
    in the config's folder; `app` ("module:attribute") serves an app of your own."""

    def __init__(
        self,
        config: Path,
        settings: dict[str, str] | None = None,
        *,
        app: str | None = None,
        args: Sequence[str] = (),
    ) -> None:
        if not config.exists():
            config.write_text("# defaults; RUNTIME_* variables set the rest\n")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
        if not FAST_PATH:
            environ["RUNTIME_REALTIME_FAST_PATH"] = "false"
        environ.update(settings or {})
        # This checkout's runtime, not the one the venv's editable install points at (a
        # git worktree's tests run its own code).
        environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPOSITORY), environ.get("PYTHONPATH")])
        )
        command = [sys.executable, "-m", "runtime", "--config", str(config)]
        self.process = subprocess.Popen(
            [*command, "serve", "--port", "0", *(["--app", app] if app else []), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environ,
            cwd=config.parent,
        )
        self.port = 0
        self.output: list[str] = []
        self._said = threading.Condition()  # notified with every line
        self._started = threading.Event()
        # Read all it says, so that a full pipe never blocks it.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._said:
                self.output.append(line)
                self._said.notify_all()
            if match := re.search(r"Serving on http://127\.0\.0\.1:(\d+)/", line):
                self.port = int(match.group(1))
                self._started.set()
        self._started.set()  # it ended

    def __enter__(self) -> ServerProcess:
        if not (self._started.wait(TIMEOUT * 2) and self.port):
            self.__exit__()
            raise RuntimeError(f"server did not start: {''.join(self.output)}")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(TIMEOUT * 2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(TIMEOUT)  # it ends with the process's output
        if self.process.stdout is not None:
            self.process.stdout.close()

    def wait_for_line(self, text: str, times: int = 1, timeout: float = TIMEOUT) -> None:
        """Wait until `times` lines of its output hold `text`; fail saying what it said."""

        def enough() -> bool:
            return sum(text in line for line in self.output) >= times

        with self._said:
            if not self._said.wait_for(enough, timeout):
                raise AssertionError(f"{text!r} not said {times}x: {''.join(self.output)}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def memory(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in bytes: resident now, and at its peak."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) * 1024
        return fields["VmRSS"], fields["VmHWM"]

    def reset_peak(self) -> None:
        """Linux >= 4.0: the peak (VmHWM) starts again from what is resident now."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def metrics_until(http: httpx.AsyncClient, line: str, timeout: float = TIMEOUT) -> str:
    """`/realtime/metrics` once it holds `line` (asked again every 20 ms: a counter
    cannot be waited on from outside the server); if it never does, the failure says
    what the metrics said last."""
    last = ""

    async def poll() -> str:
        nonlocal last
        while line not in (last := (await http.get("/realtime/metrics")).text):
            await asyncio.sleep(0.02)
        return last

    try:
        return await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        name = line.split()[0]
        seen = [kept for kept in last.splitlines() if kept.startswith(name)]
        raise AssertionError(
            f"no {line.strip()!r} in {timeout} s; last {seen}; all of the last:\n{last}"
        ) from None
