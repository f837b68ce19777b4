"""A redis-server of the tests' own: Debian's `redis-server` (`.ci/run` installs it), on
127.0.0.1 and a free port, no persistence, in a temporary folder. It can be stopped and
started again on the same port (an outage), and each test gets a key prefix of its own."""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support import TIMEOUT, free_port

__all__ = ["RedisServer", "find_redis_server", "start_redis"]


def find_redis_server() -> str | None:
    return shutil.which("redis-server")


class RedisServer:
    def __init__(self, binary: str, *, persistent: bool = False) -> None:
        self.persistent = persistent  # every write on disk: a restart keeps the data
        self.binary = binary
        self.folder = Path(tempfile.mkdtemp(prefix="runtime-redis-"))
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._prefixes = itertools.count(1)
        self._databases = itertools.count(0)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def database(self) -> str:
        """The URL of a database of its own (1 to 15, in turn), emptied: for servers,
        whose keys have no prefix of the test's."""
        number = next(self._databases) % 15 + 1
        url = f"redis://127.0.0.1:{self.port}/{number}"
        import redis

        with redis.Redis.from_url(url) as client:
            client.flushdb()
        return url

    def prefix(self) -> str:
        """Keys of one test, apart from every other test's."""
        return f"test{next(self._prefixes)}:"

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                self.binary,
                *("--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--dir", str(self.folder)),
                *(
                    ("--appendonly", "yes", "--appendfsync", "always")
                    if self.persistent
                    else ("--appendonly", "no")
                ),
                *("--unixsocket", "", "--protected-mode", "yes"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait(listening=True)

    def stop(self) -> None:
        """Gone at once, as a crash or a network cut would be (its data with it)."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(TIMEOUT)
            self._wait(listening=False)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _wait(self, *, listening: bool) -> None:
        deadline = time.monotonic() + TIMEOUT * 2
        while self._listening() != listening:
            if time.monotonic() > deadline:
                state = "listen" if listening else "stop listening"
                raise RuntimeError(f"redis-server did not {state} on port {self.port}")
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            time.sleep(0.01)  # nothing to wait on but the port itself

    def _listening(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(TIMEOUT)
            try:
                sock.connect(("127.0.0.1", self.port))
            except OSError:
                return False
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")


def start_redis(*, persistent: bool = False) -> RedisServer:
    binary = find_redis_server()
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary, persistent=persistent)
    server.start()
    return server
