"""The commands README.md and docs/performance.md tell a newcomer to type."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import httpx

from tests.docs_apps import ROOT, commands
from tests.support import TIMEOUT


def test_make_run_serves_the_demo_and_prints_its_user(tmp_path: Path) -> None:
    make_run, make_test = commands("README.md", section="Two commands")
    assert make_run == ["make", "run"]
    # `make test` is what CI runs on a clean clone: that run is its test.
    assert make_test == ["make", "test"]
    assert re.search(r"^make test", (ROOT / ".ci" / "run").read_text(), flags=re.M)

    config = tmp_path / "config.toml"
    config.write_text('[app]\nlog_level = "info"\n')
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    environ["RUNTIME_DATABASE_PATH"] = str(tmp_path / "var" / "runtime.sqlite3")
    process = subprocess.Popen(
        [*make_run, "PORT=0", f"CONFIG={config}"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # make and the server it starts: one group to stop
    )
    output: list[str] = []
    serving = threading.Event()
    url: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            # After "Serving on …": where to log in, and as whom.
            if found := re.search(r"Log in at (http://127\.0\.0\.1:\d+)/login", line):
                url.append(found[1])
                serving.set()
        serving.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert serving.wait(TIMEOUT * 6) and url, "".join(output)
        credentials = re.search(r"username: ([^\s,]+), password: ([^\s)]+)", "".join(output))
        assert credentials, "".join(output)
        saved = (tmp_path / "var" / "demo-credentials.txt").read_text()
        assert f"password: {credentials[2]}" in saved
        with httpx.Client(base_url=url[0], timeout=TIMEOUT) as http:
            login = {"username": credentials[1], "password": credentials[2]}
            assert http.post("/auth/login", json=login).is_success
            page = http.get("/messages")
            assert page.status_code == 200 and "<h1>Messages</h1>" in page.text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(TIMEOUT * 2)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(TIMEOUT)
        reader.join(TIMEOUT)
        assert process.stdout is not None
        process.stdout.close()


def test_the_benchmark_commands_are_valid() -> None:
    from benchmarks.__main__ import _parser  # not at collection (test_benchmarks_smoke.py)

    lines = commands("docs/performance.md", section="Running it")
    make_lines = [line for line in lines if line[0] == "make"]
    assert make_lines == [["make", "bench"], ["make", "bench", "BENCH_ARGS=--quick"]]
    for line in make_lines:
        planned = subprocess.run(
            [*line, "-n", "-W", "pyproject.toml"],  # what make would run, running nothing
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        ).stdout
        arguments = line[2].removeprefix("BENCH_ARGS=") if len(line) > 2 else ""
        assert f".venv/bin/python -m benchmarks {arguments}".strip() in planned
    for line in lines:
        if line[0] != "make":
            assert line[:3] == [".venv/bin/python", "-m", "benchmarks"]
            _parser().parse_args(line[3:])  # argparse exits on what it does not know
