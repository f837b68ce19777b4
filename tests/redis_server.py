"""A redis-server of the tests' own: Debian's `redis-server` (`.ci/run` installs it), on
127.0.0.1 and a free port, no persistence, in a temporary folder. It can be stopped and
started again on the same port (an outage), and each test gets a key prefix of its own."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
import threading
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
        self._process: subprocess.Popen[str] | None = None
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
        """Started, and listening: redis-server says when it is ready (its log, read
        here as it comes, and to the end so that the pipe never fills)."""
        process = subprocess.Popen(
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
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready = threading.Event()
        log: list[str] = []

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                log.append(line)
                if "Ready to accept connections" in line:
                    ready.set()
            ready.set()  # it ended: the check below tells

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        self._process = process
        if not ready.wait(TIMEOUT * 2) or process.poll() is not None:
            self.stop()
            raise RuntimeError(f"redis-server did not start on port {self.port}: {''.join(log)}")

    def stop(self) -> None:
        """Gone at once, as a crash or a network cut would be (its data with it): its
        port is free once it has exited."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(TIMEOUT)
            self._reader.join(TIMEOUT)  # its log ends with it
            if process.stdout is not None:
                process.stdout.close()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_redis(*, persistent: bool = False) -> RedisServer:
    binary = find_redis_server()
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary, persistent=persistent)
    server.start()
    return server
