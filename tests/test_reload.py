"""`python -m runtime serve --reload` and `--debug`, run as a user runs them (a process of
its own, an `--app` module in its folder), with files edited under it."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from runtime.development import debug_refusal
from tests.docs_apps import commands
from tests.support import REPOSITORY, TIMEOUT, ServerProcess
from tests.test_serve_app import runtime

# A restart is a new Python process importing the runtime: allow for a loaded machine.
RESTART = TIMEOUT * 4

APP = """
from quart import current_app, render_template

from runtime import create_app

app = create_app()


@app.get("/hello")
async def hello():
    return "ANSWER"


@app.get("/setting")
async def setting():
    return current_app.extensions["runtime"].config.app.log_level


@app.get("/page")
async def page():
    return await render_template("page.html")


@app.get("/boom")
async def boom():
    raise ValueError("the route fell over")
"""


def documented(flag: str) -> tuple[str, list[str]]:
    """docs/pages.md's command with `flag`: its `--app` value and the options after it."""
    section = "While you develop: `--reload` and `--debug`"
    reload, debug = commands("docs/pages.md", section=section)
    for command in (reload, debug):
        assert command[:6] == ["python", "-m", "runtime", "serve", "--app", "myapp:app"]
    (command,) = [c for c in (reload, debug) if c[6:] == [flag]]
    return command[5], command[6:]


def write_app(folder: Path, answer: str) -> None:
    (folder / "myapp.py").write_text(APP.replace("ANSWER", answer))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_app(tmp_path, "one")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text("first page\n")
    (tmp_path / "mine.toml").write_text(
        f'[app]\nlog_level = "warning"\n[database]\npath = {json.dumps("mine.sqlite3")}\n'
    )
    return tmp_path


def answer(server: ServerProcess, path: str) -> str | None:
    """What `path` answers (its text if 200, else None), asked once a server is up."""
    response = httpx.get(server.url + path, timeout=TIMEOUT)
    return response.text if response.status_code == 200 else None


def said(server: ServerProcess, text: str) -> bool:
    return any(text in line for line in server.output)


async def closed_code(ws: websockets.ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), RESTART)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


def test_an_edit_restarts_the_server_and_its_clients_reconnect(folder: Path) -> None:
    app, args = documented("--reload")
    with ServerProcess(folder / "mine.toml", app=app, args=args) as server:
        server.wait_for_line("Mode:     reload")
        assert answer(server, "/hello") == "one"

        async def edit_while_connected() -> None:
            url = f"{server.ws_url}/realtime/subscribe"
            async with websockets.connect(url, open_timeout=TIMEOUT) as ws:
                assert json.loads(await ws.recv())["type"] == "connected"
                write_app(folder, "two")
                assert await closed_code(ws) == 1001  # the normal stop: clients reconnect

        asyncio.run(edit_while_connected())
        server.wait_for_line("Serving on", times=2, timeout=RESTART)  # the next server's banner
        assert answer(server, "/hello") == "two"
        assert said(server, "reloading: myapp.py changed")

        async def reconnect() -> None:
            url = f"{server.ws_url}/realtime/subscribe"
            async with websockets.connect(url, open_timeout=TIMEOUT) as ws:
                assert json.loads(await ws.recv())["type"] == "connected"

        asyncio.run(reconnect())
        # A template is read again when it changes, with no restart.
        assert answer(server, "/page") == "first page"
        restarts = sum("reloading:" in line for line in server.output)
        (folder / "templates" / "page.html").write_text("second page\n")
        assert answer(server, "/page") == "second page"  # read again as it is rendered
        assert sum("reloading:" in line for line in server.output) == restarts


def test_a_syntax_error_waits_for_the_fix_and_the_config_reloads(folder: Path) -> None:
    with ServerProcess(folder / "mine.toml", app="myapp", args=["--reload"]) as server:
        assert answer(server, "/setting") == "warning"
        (folder / "myapp.py").write_text(APP + "\ndef broken(:\n")
        server.wait_for_line("reload: the server exited with code 1", timeout=RESTART)
        assert said(server, "SyntaxError")
        assert server.process.poll() is None  # the watcher lives on
        write_app(folder, "fixed")
        server.wait_for_line("Serving on", times=2, timeout=RESTART)
        assert answer(server, "/hello") == "fixed"

        (folder / "mine.toml").write_text(
            f'[app]\nlog_level = "error"\n[database]\npath = {json.dumps("mine.sqlite3")}\n'
        )
        server.wait_for_line("Serving on", times=3, timeout=RESTART)
        assert answer(server, "/setting") == "error"
        assert said(server, "reloading: mine.toml changed")
    assert server.process.returncode == 0  # SIGTERM stops the watcher and its server


def test_debug_shows_the_traceback_of_an_unexpected_error(folder: Path) -> None:
    app, args = documented("--debug")
    with ServerProcess(folder / "mine.toml", app=app, args=args) as server:
        server.wait_for_line("Mode:     debug")
        api = httpx.get(server.url + "/boom", timeout=TIMEOUT)
        assert api.status_code == 500
        error = api.json()["error"]
        assert error["code"] == "internal_error"
        assert "ValueError: the route fell over" in error["traceback"]
        assert 'myapp.py", line' in error["traceback"]
        page = httpx.get(server.url + "/boom", headers={"Accept": "text/html"}, timeout=TIMEOUT)
        assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
        assert "<pre>Traceback (most recent call last):" in page.text
        assert "ValueError: the route fell over" in page.text
        assert answer(server, "/setting") == "debug"  # the log level, for the app too


def test_without_debug_a_500_shows_no_traceback(folder: Path) -> None:
    with ServerProcess(folder / "mine.toml", app="myapp", args=["--reload"]) as server:
        response = httpx.get(server.url + "/boom", timeout=TIMEOUT)
        assert response.status_code == 500
        assert response.json() == {
            "error": {"code": "internal_error", "message": "Internal server error."}
        }


@pytest.mark.parametrize(
    ("args", "settings", "says"),
    [
        (
            ["--debug"],
            {"RUNTIME_APP_ENV": "production", "RUNTIME_APP_SECRET_KEY": "s" * 32},
            "error: --debug: app.env is production",
        ),
        (["--debug", "--host", "0.0.0.0"], {}, "error: --debug: --host 0.0.0.0 is not a loopback"),
        (
            ["--reload", "--workers", "2"],
            {"RUNTIME_REALTIME_BROKER": "redis://127.0.0.1:1/0"},
            "error: --reload restarts one server process: drop --workers 2",
        ),
    ],
)
def test_refusals_are_one_line(
    folder: Path, args: list[str], settings: dict[str, str], says: str
) -> None:
    result = runtime(
        folder, "--config", "mine.toml", "serve", "--port", "0", "--app", "myapp", *args,
        **settings,
    )  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(says), line


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("[::1]", False),
        ("localhost", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.10", True),
        ("example.com", True),
    ],
)
def test_debug_wants_a_loopback_host(host: str, refused: bool) -> None:
    assert (debug_refusal("development", host) is not None) == refused
    assert debug_refusal("production", "127.0.0.1") is not None


def test_make_run_passes_reload_and_debug() -> None:
    shown = subprocess.run(
        ["make", "-n", "run", "RELOAD=1", "DEBUG=1"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"runtime .*serve .*--reload +--debug", shown.replace("\\\n", " ")), shown
    plain = subprocess.run(
        ["make", "-n", "run"], cwd=REPOSITORY, capture_output=True, text=True, check=True
    ).stdout
    assert "--reload" not in plain and "--debug" not in plain
