"""`serve --workers N`: N server processes on one listening socket, acting as one server.

The parent binds the socket once (so that port 0 works and every worker shares it), and
has already checked that the app starts (configuration, database, broker). It then runs
N workers, each `python -m runtime serve` again with the socket's file descriptor
(`--socket-fd`): the kernel hands each new connection to one of them, and the broker
they share makes them one realtime server (docs/scaling.md). A worker that dies is
started again; SIGINT or SIGTERM stops them all (each closes its clients with 1001 and
finishes its requests) and the parent waits for them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

__all__ = ["bind", "inherited_socket", "needs_shared_broker", "run_workers", "worker_command"]

log = logging.getLogger("runtime.server")

STOP_TIMEOUT = 15.0  # seconds workers get to finish before they are killed
RESTART_DELAYS = (0.5, 10.0)  # the first and the longest wait before starting one again


def needs_shared_broker(broker: str, workers: int) -> str | None:
    """Why `workers` processes cannot serve with this broker, or None."""
    if workers > 1 and broker == "memory":
        return (
            f"realtime.broker: --workers {workers} needs a broker the processes share "
            "(redis://host:6379/0, see docs/scaling.md); 'memory' lives in one process"
        )
    return None


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


class _Worker:
    """One worker process, started again when it dies: at once the first time, then
    after a delay that grows while it keeps dying (one that cannot start must not spin),
    and starts over once a worker has lived a minute."""

    def __init__(self, command: Sequence[str], sock: socket.socket) -> None:
        self._command = [*command, "--socket-fd", str(sock.fileno())]
        self._fd = sock.fileno()
        self._delay = RESTART_DELAYS[0]
        self._due: float | None = None  # when to start it again, once it died
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        self._started = time.monotonic()
        return subprocess.Popen(self._command, pass_fds=(self._fd,))

    def check(self, now: float) -> None:
        if self._due is None:
            code = self.process.poll()
            if code is None:
                return
            if now - self._started > 60:
                self._delay = RESTART_DELAYS[0]
            self._due = now + self._delay
            self._delay = min(self._delay * 2, RESTART_DELAYS[1])
            log.error("worker %d exited with %s; starting another", self.process.pid, code)
        elif now >= self._due:
            self._due = None
            self.process = self._start()


def run_workers(command: Sequence[str], sock: socket.socket, workers: int) -> int:
    """Run `workers` copies of `command` (a `serve` without the socket) on `sock` until
    SIGINT or SIGTERM; then stop them and wait."""
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    pool = [_Worker(command, sock) for _ in range(workers)]
    try:
        while not stopping.wait(0.2):  # a signal sets it; workers are checked meanwhile
            now = time.monotonic()
            for worker in pool:
                worker.check(now)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop(pool)
    return 0


def _stop(pool: list[_Worker]) -> None:
    for worker in pool:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for worker in pool:
        try:
            worker.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("worker %d did not stop in time; killing it", worker.process.pid)
            worker.process.kill()
            worker.process.wait()


def worker_command(argv: Sequence[str]) -> list[str]:
    """This command line, as a worker runs it: the same, without `--workers`."""
    command = [sys.executable, "-m", "runtime"]
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        command.append(arg)
    return command


def inherited_socket(fd: int) -> socket.socket:
    """The listening socket a worker was given."""
    sock = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    return sock
