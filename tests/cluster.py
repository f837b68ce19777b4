"""Several `python -m runtime serve` processes on one Redis and one database, configured
as docs/scaling.md says: the servers of the scale-out tests (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Protocol

import httpx

from tests.conftest import PASSWORD
from tests.docs_apps import blocks
from tests.redis_server import RedisServer
from tests.support import TIMEOUT, ServerProcess

__all__ = ["Reachable", "create_user", "logged_in", "server_cluster"]

SECRET_KEY = "a-secret-key-both-processes-share-0123456789"


class Reachable(Protocol):
    """A server, or a proxy in front of servers."""

    @property
    def url(self) -> str: ...


@contextmanager
def server_cluster(
    folder: Path,
    redis_server: RedisServer,
    *,
    config: str = "",
    settings: dict[str, str] | None = None,
    size: int = 2,
) -> Iterator[list[ServerProcess]]:
    """`size` server processes sharing one database file in `folder` and one Redis
    database of their own, with a user "alice"; `config` is added to docs/scaling.md's
    configuration, `settings` to their environment."""
    (example,) = blocks("docs/scaling.md", "toml", section="Several processes on Redis")
    path = folder / "config.toml"
    shared = example.replace("redis://127.0.0.1:6379/0", redis_server.database())
    path.write_text(f"{shared}\n{config}")
    environ = {
        "RUNTIME_DATABASE_PATH": str(folder / "shared.sqlite3"),
        "RUNTIME_APP_SECRET_KEY": SECRET_KEY,
        **(settings or {}),
    }
    with ExitStack() as stack:
        servers = [stack.enter_context(ServerProcess(path, environ))]
        create_user(folder, environ, "alice")  # once the first made the tables
        servers += [stack.enter_context(ServerProcess(path, environ)) for _ in range(size - 1)]
        yield servers


def create_user(folder: Path, settings: dict[str, str], name: str) -> None:
    """`python -m runtime create-user NAME` in `folder`, with the tests' password."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    environ.update(settings, RUNTIME_PASSWORD=PASSWORD)
    subprocess.run(
        [sys.executable, "-m", "runtime", "--config", "config.toml", "create-user", name],
        cwd=folder,
        env=environ,
        check=True,
        capture_output=True,
        timeout=TIMEOUT * 6,
    )


@asynccontextmanager
async def logged_in(server: Reachable, name: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        response = await http.post("/auth/login", json={"username": name, "password": PASSWORD})
        assert response.status_code == 200, response.text
        yield http
