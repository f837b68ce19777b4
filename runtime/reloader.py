"""`serve --reload` (and `--debug`): a watcher that restarts the server when a Python file
or the configuration changes.

The watcher binds the listening socket once (the port stays while servers come and go,
and port 0 works) and never imports the app: a syntax error in it costs the server, not
the watcher. It runs the server as `python -m runtime serve` again, given the socket's
file descriptor (`--reload-fd`), and watches, with watchfiles (uvicorn's and Granian's
reloader), the `*.py` files under the current directory and the runtime's package, and
the configuration file. On a change it says `reloading: <file> changed`, stops the
server with SIGTERM (its realtime clients get 1001 and reconnect, as on any stop) and
starts another. A server that exits by itself (an import error, a bad configuration)
is said once, and the watcher waits for the next change. Templates need no restart:
the server re-reads them when they change (runtime/development.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from watchfiles import Change, DefaultFilter, watch

__all__ = ["reload_command", "run_reloading", "serve_reloading"]

STOP_TIMEOUT = 10.0  # seconds a server gets to close its clients and finish its requests
TICK_MS = 250  # how often the watcher looks at the server between changes


def reload_command(argv: Sequence[str], fd: int) -> list[str]:
    """This command line as the server under the watcher runs it: `--reload-fd` added."""
    return [sys.executable, "-m", "runtime", *argv, "--reload-fd", str(fd)]


class _SourceFilter(DefaultFilter):
    """Python files (outside .git, .venv, __pycache__ …) and the configuration file."""

    def __init__(self, config: Path | None) -> None:
        super().__init__()
        self._config = str(config) if config is not None else None

    def __call__(self, change: Change, path: str) -> bool:
        if path == self._config:
            return True
        return path.endswith(".py") and super().__call__(change, path)


class _Server:
    """The server process: started again on a change; said once when it exits alone."""

    def __init__(self, command: Sequence[str], fd: int) -> None:
        self._command, self._fd = list(command), fd
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        self._exit_said = False
        return subprocess.Popen(self._command, pass_fds=(self._fd,))

    def check(self) -> None:
        code = self.process.poll()
        if code is not None and not self._exit_said:
            self._exit_said = True
            _say(f"reload: the server exited with code {code}; waiting for a change")

    def restart(self) -> None:
        self.stop()
        self.process = self._start()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _say(f"reload: the server did not stop in {STOP_TIMEOUT:g}s; killing it")
            self.process.kill()
            self.process.wait()


def serve_reloading(host: str, port: int, argv: Sequence[str], config: str | None) -> int:
    """`serve --reload`: bind `host:port` here, then `run_reloading`."""
    from .workers import bind

    return run_reloading(argv, bind(host, port), config)


def run_reloading(argv: Sequence[str], sock: socket.socket, config: str | None) -> int:
    """Serve `argv` (a `serve` command line) on `sock`, restarted on every change, until
    SIGINT or SIGTERM."""
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    config_path = Path(config).resolve() if config and Path(config).is_file() else None
    roots = {Path.cwd().resolve(), Path(__file__).resolve().parent}
    if config_path is not None:
        roots.add(config_path.parent)
    server: _Server | None = None
    try:
        changes_seen = watch(
            *sorted(roots),
            watch_filter=_SourceFilter(config_path),
            stop_event=stopping,
            rust_timeout=TICK_MS,
            yield_on_timeout=True,
            raise_interrupt=False,
        )
        for changes in changes_seen:
            if server is None:  # the first tick: watching now, so no change is missed
                server = _Server(reload_command(argv, sock.fileno()), sock.fileno())
            elif changes:
                _say(f"reloading: {_changed(changes)} changed")
                server.restart()
            server.check()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server is not None:
            server.stop()
    return 0


def _changed(changes: set[tuple[Change, str]]) -> str:
    """The changed files, relative to the current directory where they are under it."""
    paths = sorted({os.path.relpath(path) if _under_cwd(path) else path for _, path in changes})
    return paths[0] + (f" (and {len(paths) - 1} more)" if len(paths) > 1 else "")


def _under_cwd(path: str) -> bool:
    return Path(path).is_relative_to(Path.cwd().resolve())


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
