"""`runtime.server.run(app)`: serving from synchronous code, as a script does."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.support import TIMEOUT

SCRIPT = """
import logging

from quart import Quart

from runtime.server import run

logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
app = Quart(__name__)


@app.get("/")
async def hello():
    return "hello from a script"


@app.get("/gc")
async def garbage_collector():
    import gc

    return {"threshold": list(gc.get_threshold()), "frozen": gc.get_freeze_count()}


if __name__ == "__main__":
    run(app, port=0)
"""


def test_run_serves_until_sigterm(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(SCRIPT)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    process = subprocess.Popen(
        [sys.executable, "script.py"],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    started = threading.Event()
    port: list[int] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if match := re.search(r"runtime\.server: serving on http://127\.0\.0\.1:(\d+)/", line):
                port.append(int(match.group(1)))
                started.set()
        started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(TIMEOUT * 2) and port, "".join(output)
        response = httpx.get(f"http://127.0.0.1:{port[0]}/", timeout=TIMEOUT)
        assert response.text == "hello from a script"
        # Set up for serving: what existed at start frozen, young collections rarer.
        collector = httpx.get(f"http://127.0.0.1:{port[0]}/gc", timeout=TIMEOUT).json()
        assert collector["threshold"] == [10_000, 10, 10] and collector["frozen"] > 10_000
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT * 2) == 0, "".join(output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(TIMEOUT)
        assert process.stdout is not None
        process.stdout.close()
    assert "Traceback" not in "".join(output)
