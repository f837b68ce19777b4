"""The servers under test: the runtime as `make run` starts it (memory broker, the demo
on, a seeded user, limits raised for the load) and the peers, each its own process
pinned to the server CPU."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .processes import ServerProcess

__all__ = [
    "BARE_WRITES",
    "OURS",
    "PEERS",
    "SOCKETIO",
    "Running",
    "Server",
    "running",
    "running_cluster",
]

REPO = Path(__file__).resolve().parent.parent
USERNAME = "bench"
PASSWORD = "bench-password-not-secret"
# The text of each event: with it the runtime's event frame is about 250 bytes, as
# in the issue's measurements; the peers' frames are built to the same shape and size.
TEXT_LENGTH = 45

# The runtime's limits, raised only where the load would otherwise hit them: more
# connections than the default 10,000, a burst of subscribes (publish cost test), and
# send queues that let a reader fall behind a fast burst without being cut off.
OUR_SETTINGS = {
    "RUNTIME_APP_LOG_LEVEL": "warning",
    "RUNTIME_REALTIME_MAX_CONNECTIONS": "20000",
    "RUNTIME_REALTIME_MESSAGE_RATE_LIMIT": "100000/10second",
    "RUNTIME_REALTIME_SEND_QUEUE_SIZE": "100000",
    "RUNTIME_REALTIME_SEND_QUEUE_BYTES": str(64 * 2**20),
    # One user writes hundreds a second: counted (the limiter's cost is measured), never
    # refused.
    "RUNTIME_API_RATE_LIMIT": "1000000/second",
}


@dataclass(frozen=True)
class Server:
    """One kind of server, and how a client reaches it."""

    key: str
    label: str
    ours: bool
    ws_path: str | None
    sse_path: str | None = None
    module: str | None = None  # a peer's script, run with `python -m`
    node_script: str | None = None  # or a Node.js peer's script, under REPO
    publish_path: str = "/publish"


OURS = Server("ours", "ours", True, "/realtime/subscribe", "/realtime/subscribe?pattern=messages")
PEERS = (
    Server("quart", "Quart + Hypercorn loop", False, "/ws", "/sse", "benchmarks.peers.quart_loop"),
    Server(
        "starlette",
        "Starlette + broadcaster (uvicorn)",
        False,
        "/ws",
        module="benchmarks.peers.starlette_broadcaster",
    ),
    Server(
        "websockets",
        "websockets broadcast()",
        False,
        "/",
        module="benchmarks.peers.websockets_broadcast",
    ),
)

# The Node.js Socket.IO v4 peer (fan-out only): `npm ci --prefix benchmarks/peers/socketio`.
SOCKETIO = Server(
    "socketio",
    "Node.js Socket.IO v4",
    False,
    "/socket.io/?EIO=4&transport=websocket",
    node_script="benchmarks/peers/socketio/server.js",
)
# The `writes` section's peer: one create by hand (no fan-out), written to like ours.
BARE_WRITES = Server(
    "bare_writes",
    "bare Quart + Hypercorn create",
    False,
    None,
    module="benchmarks.peers.bare_quart_writes",
    publish_path="/messages",
)


@dataclass(frozen=True)
class Running:
    server: Server
    pid: int
    port: int
    publish_port: int
    cookie: str | None

    def publish_target(self) -> dict[str, Any]:
        path = "/api/collections/messages/records" if self.server.ours else self.server.publish_path
        return {
            "port": self.publish_port,
            "path": path,
            # The body: a record's fields (ours, the bare writes peer) or a frame.
            "ours": self.server.ours or self.server is BARE_WRITES,
            "text_length": TEXT_LENGTH,
            "cookie": self.cookie,
        }


def _clean_environ(settings: Mapping[str, str] | None = None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    # The runtime of this checkout, not the one the virtualenv has installed (an
    # editable install of another checkout or worktree would be measured instead).
    path = environ.get("PYTHONPATH")
    environ["PYTHONPATH"] = f"{REPO}{os.pathsep}{path}" if path else str(REPO)
    environ.update(settings or {})
    return environ


def _seed(workdir: Path, environ: dict[str, str]) -> Path:
    """A fresh database with the user the load client logs in as."""
    config = workdir / "config.toml"
    database = workdir / "bench.sqlite3"
    for stale in workdir.glob("bench.sqlite3*"):
        stale.unlink()
    config.write_text(f'[database]\npath = "{database}"\n')
    subprocess.run(
        [sys.executable, "-m", "runtime", "--config", str(config), "create-user", USERNAME],
        env={**environ, "RUNTIME_PASSWORD": PASSWORD},
        cwd=workdir,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return config


def _log_in(port: int) -> str:
    body = json.dumps({"username": USERNAME, "password": PASSWORD}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/auth/login",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Set-Cookie"]).split(";", 1)[0]


def _our_process(
    config: Path, environ: dict[str, str], cpu: int | None, workdir: Path
) -> ServerProcess:
    command = [sys.executable, "-m", "runtime", "--config", str(config), "serve"]
    return ServerProcess(
        OURS.key,
        [*command, "--port", "0"],
        ready=r"Serving on http://127\.0\.0\.1:(\d+)/",
        cpu=cpu,
        env=environ,
        cwd=workdir,
    )


@contextlib.contextmanager
def running(
    server: Server, workdir: Path, cpu: int | None, settings: Mapping[str, str] | None = None
) -> Iterator[tuple[Running, ServerProcess]]:
    """Start `server` (ours with extra `settings`), yield it, always stop it."""
    if server.ours:
        environ = _clean_environ({**OUR_SETTINGS, **(settings or {})})
        process = _our_process(_seed(workdir, environ), environ, cpu, workdir)
    else:
        process = ServerProcess(
            server.key,
            _peer_command(server),
            ready=r"port=(\d+)",
            cpu=cpu,
            env=_clean_environ(settings),
            cwd=REPO,
        )
    with process:
        publish_port = process.port
        cookie = _log_in(process.port) if server.ours else None
        for line in process.output:
            if found := re.search(r"publish_port=(\d+)", line):
                publish_port = int(found.group(1))
            if found := re.search(r"cookie=(\S+)", line):
                cookie = found.group(1)
        yield Running(server, process.pid, process.port, publish_port, cookie), process


def _peer_command(server: Server) -> list[str]:
    if server.module is not None:
        return [sys.executable, "-m", server.module]
    assert server.node_script is not None
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(f"{server.label} needs Node.js: apt-get install nodejs npm")
    script = REPO / server.node_script
    if not (script.parent / "node_modules").is_dir():
        raise RuntimeError(
            f"{server.label}: run `npm ci --prefix {script.parent.relative_to(REPO)}`"
        )
    return [node, str(script)]


@contextlib.contextmanager
def running_cluster(
    count: int, workdir: Path, cpu: int | None, settings: Mapping[str, str]
) -> Iterator[list[tuple[Running, ServerProcess]]]:
    """`count` of our servers on one database, one secret key and the broker that
    `settings` names (docs/scaling.md); each logged in to on its own."""
    environ = _clean_environ(
        {**OUR_SETTINGS, "RUNTIME_APP_SECRET_KEY": "bench-cluster-secret-key-0123456789"}
    )
    environ.update(settings)
    config = _seed(workdir, environ)
    with contextlib.ExitStack() as stack:
        servers = []
        for _ in range(count):
            process = stack.enter_context(_our_process(config, environ, cpu, workdir))
            live = Running(OURS, process.pid, process.port, process.port, _log_in(process.port))
            servers.append((live, process))
        yield servers
