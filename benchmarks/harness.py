"""What every section of the suite shares: the CPUs to pin to, and a load client
process per measurement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from .processes import ServerProcess, available_cpus
from .targets import REPO, Running

__all__ = ["Cpus", "Log", "connector", "run_load", "trouble"]

Log = Callable[[str], None]


class Cpus:
    """The servers' CPU and the load client's (None: not pinned, fewer than two)."""

    def __init__(self) -> None:
        cpus = available_cpus()
        self.pinned = len(cpus) >= 2
        self.server = cpus[0] if self.pinned else None
        self.load = cpus[1] if self.pinned else None

    def keep_off_the_server_cpu(self) -> None:
        """The harness itself (mostly waiting) shares the load client's CPU."""
        if self.load is not None:
            os.sched_setaffinity(0, {self.load})


def run_load(spec: dict[str, Any], time_limit: float) -> dict[str, Any]:
    """One load client process for one measurement; its result."""
    spec = {**spec, "time_limit": time_limit}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.load"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=time_limit + 60,
    )
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    raise RuntimeError(f"load client failed ({completed.returncode}):\n{completed.stderr[-3000:]}")


def connector(
    server: Running, transport: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """How the load client reaches `server` over `transport` ("ws", "ws_batch", "sse",
    "socketio")."""
    spec = server.server
    if transport == "sse":
        assert spec.sse_path is not None
        path = spec.sse_path
    else:
        assert spec.ws_path is not None
        path = spec.ws_path + ("?batch=1" if transport == "ws_batch" else "")
    return {
        "port": server.port,
        "transport": transport if transport in ("sse", "socketio") else "ws",
        "path": path,
        "ours": spec.ours,
        "headers": headers,
    }


def trouble(process: ServerProcess) -> list[str]:
    """What the server printed that looks like trouble, and whether it died."""
    lines = process.errors()
    if not process.alive():
        lines.append(f"the server exited with {process.process.returncode}")
    return lines[-20:]
