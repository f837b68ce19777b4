"""Server processes for the benchmarks: started pinned to a CPU, their port read from
what they print, always stopped (terminate, then kill), also on Ctrl-C and errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ServerProcess", "available_cpus", "pinned"]

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# Sets the CPU affinity, then becomes the real command: pinned before the first thread
# exists, so every thread of the server inherits it.
_PIN = (
    "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])}); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


def available_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def pinned(command: Sequence[str], cpu: int | None) -> list[str]:
    """`command` run on CPU `cpu` only (as it is when `cpu` is None)."""
    if cpu is None:
        return list(command)
    return [sys.executable, "-c", _PIN, str(cpu), *command]


class ServerProcess:
    """A server started as `command`, ready once it prints a line matching `ready`
    (whose first group is its port)."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        ready: str,
        cpu: int | None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.port = 0
        self.output: list[str] = []
        self._ready = re.compile(ready)
        self._started = threading.Event()
        self.process = subprocess.Popen(
            pinned(command, cpu),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
        # Read all it says, so that a full pipe never blocks it.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if len(self.output) > 2000:  # a chatty server: keep the latest only
                del self.output[:1000]
            if not self.port and (match := self._ready.search(line)):
                self.port = int(match.group(1))
                self._started.set()
        self._started.set()  # it ended

    def __enter__(self) -> ServerProcess:
        if not (self._started.wait(START_TIMEOUT) and self.port):
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n{''.join(self.output[-40:])}")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(STOP_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def errors(self) -> list[str]:
        """Lines it printed that look like trouble (tracebacks, errors, warnings)."""
        markers = ("Traceback", "ERROR", "WARNING", "Error", "CRITICAL")
        return [line.rstrip() for line in self.output if any(m in line for m in markers)]
