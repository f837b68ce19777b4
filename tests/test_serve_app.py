"""`python -m runtime serve --app module:attribute`: an app of your own, run as a user
runs it (a separate process, in the app's folder), with real clients."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.realtime_client import Client
from tests.redis_server import RedisServer
from tests.support import REPOSITORY, TIMEOUT, ServerProcess, assert_error

MYAPP = """
import peewee
from quart import render_template

from runtime import BaseModel, create_app
from runtime.users import User


class Post(BaseModel):
    title = peewee.CharField()
    author = peewee.ForeignKeyField(User)
    read_rule = "public"
    create_rule = "authenticated"
    update_rule = delete_rule = "owner"
    owner_field = "author"

    class Meta:
        table_name = "notes"  # the demo's name: an app of your own keeps it


def make_app():
    app = create_app()

    @app.get("/")
    async def index():
        return await render_template("index.html", posts=Post.select())

    return app


app = make_app()
title = "not an app"


def needs_arguments(config):
    return create_app(config)


def returns_nothing():
    return None
"""


def environment(**settings: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    environ.update(settings)
    # This checkout's runtime, not the one the venv's editable install points at.
    environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPOSITORY), environ.get("PYTHONPATH")])
    )
    return environ


def runtime(folder: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        capture_output=True,
        text=True,
        env=environment(**settings),
        cwd=folder,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT * 6,
        check=False,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An app's folder: its module, its templates, its configuration (not config.toml)."""
    (tmp_path / "myapp.py").write_text(MYAPP)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "index.html").write_text(
        "<ul>{% for post in posts %}<li>{{ post.title }}</li>{% endfor %}</ul>\n"
    )
    (tmp_path / "mine.toml").write_text(
        f'[app]\nlog_level = "warning"\n[database]\npath = {json.dumps("mine.sqlite3")}\n'
    )
    created = runtime(
        tmp_path, "--config", "mine.toml", "create-user", "ann", RUNTIME_PASSWORD=PASSWORD
    )
    assert created.returncode == 0, created.stderr
    return tmp_path


@pytest.mark.parametrize("spec", ["myapp:app", "myapp:make_app"])
async def test_an_app_of_your_own_is_served_without_the_demo(folder: Path, spec: str) -> None:
    with ServerProcess(folder / "mine.toml", app=spec) as server:
        async with (
            await Client.connect(server, user="ann") as ann,
            httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
        ):
            await ann.ok_subscribe("notes")
            login = await http.post("/auth/login", json={"username": "ann", "password": PASSWORD})
            assert login.status_code == 200
            created = await http.post("/api/collections/notes/records", json={"title": "hello"})
            assert created.status_code == 201, created.text
            event = await ann.recv_type("event")
            assert event["collection"] == "notes" and event["record"]["title"] == "hello"
            assert "owner" not in event["record"]  # the app's own notes, not the demo's
            page = await http.get("/")  # its own templates/, in the folder it is served from
            assert page.text.strip() == "<ul><li>hello</li></ul>"
            assert_error(await http.get("/messages"), 404, "not_found")
            assert_error(await http.get("/api/collections/messages/records"), 404, "not_found")
            assert (await http.get("/login")).status_code == 200  # the runtime's login page
        assert "Log in at" not in "".join(server.output)
    assert (folder / "mine.sqlite3").is_file()  # --config reached the app's create_app()
    assert not (folder / "demo-credentials.txt").exists()


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("myapp:", "expected module:attribute"),
        ("plain", "plain has neither `app` nor `create_app()`"),
        ("imports_the_runtimes", "imports_the_runtimes has neither `app` nor `create_app()`"),
        (":app", "expected module:attribute"),
        ("nowhere:app", "no module named 'nowhere'"),
        ("myapp:nothing", "has no attribute 'nothing'"),
        ("myapp:title", "title is a str, not a Quart app or factory"),
        ("myapp:needs_arguments", "needs_arguments() needs arguments"),
        ("myapp:returns_nothing", "returns_nothing() returned a NoneType, not a Quart app"),
    ],
)
def test_a_bad_app_is_one_line_and_exit_code_2(folder: Path, spec: str, says: str) -> None:
    (folder / "plain.py").write_text("title = 'no app here'\n")
    (folder / "imports_the_runtimes.py").write_text("from runtime import create_app\n")
    result = runtime(folder, "--config", "mine.toml", "serve", "--port", "0", "--app", spec)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: --app {spec!r}: ") and says in line, line


def test_an_error_in_the_apps_own_code_keeps_its_traceback(folder: Path) -> None:
    (folder / "broken.py").write_text("import not_installed_anywhere\n")
    result = runtime(folder, "serve", "--port", "0", "--app", "broken:app")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "not_installed_anywhere" in result.stderr


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("myapp", None),  # its `app`
        ("factory", "from myapp import make_app as create_app\n"),  # its create_app()
    ],
)
def test_a_module_alone_means_its_app_or_its_create_app(
    folder: Path, module: str, source: str | None
) -> None:
    if source:
        (folder / f"{module}.py").write_text(source)
    with (
        ServerProcess(folder / "mine.toml", app=module) as server,
        httpx.Client(base_url=server.url, timeout=TIMEOUT) as http,
    ):
        assert http.get("/").text.strip() == "<ul></ul>"  # the app's own page
        assert http.get("/messages").status_code == 404  # not the demo


def test_config_after_the_command_wins_and_the_banner_says_what_is_used(
    folder: Path, redis_server: RedisServer
) -> None:
    (folder / "other.toml").write_text('[database]\npath = "other.sqlite3"\n')
    broker = redis_server.database().replace("redis://", "redis://default:hunter2-secret@")
    with ServerProcess(  # --config before the command names other.toml, after: mine.toml
        folder / "other.toml",
        {"RUNTIME_REALTIME_BROKER": broker},
        app="myapp",
        args=["--config", "mine.toml"],
    ) as server:
        assert httpx.get(f"{server.url}/", timeout=TIMEOUT).status_code == 200
    output = "".join(server.output)
    assert f"  Database: sqlite {folder / 'mine.sqlite3'}\n" in output  # made by the fixture
    assert f"  Broker:   {broker.replace('hunter2-secret', '***')}\n" in output
    assert f"  Config:   {folder / 'mine.toml'}\n" in output
    assert "hunter2-secret" not in output and "note: no SQLite database" not in output
    assert not (folder / "other.sqlite3").exists()


def test_a_new_sqlite_database_is_said_and_no_config_file_is_none(folder: Path) -> None:
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "myapp.py").write_text(MYAPP)  # the app, served from a folder of its own
    # after the command, the default config.toml, which is not there: no file, defaults
    with ServerProcess(
        elsewhere / "x.toml", app="myapp", args=["--config", "config.toml"]
    ) as first:
        pass
    with ServerProcess(
        elsewhere / "x.toml", app="myapp", args=["--config", "config.toml"]
    ) as again:
        pass
    database = elsewhere / "var" / "runtime.sqlite3"
    for server, new in ((first, True), (again, False)):
        output = "".join(server.output)
        note = f"  note: no SQLite database was at {database}: created a new, empty one\n"
        assert (note in output) is new
        assert f"  Database: sqlite {database}\n" in output
        assert "  Broker:   memory\n" in output
        assert "  Config:   none\n" in output


def test_create_user_takes_config_after_the_command(folder: Path) -> None:
    created = runtime(folder, "create-user", "bob", "--config", "mine.toml", RUNTIME_PASSWORD="pw")
    assert created.returncode == 0, created.stderr
    assert not (folder / "var").exists()  # mine.toml's database, not the default one
    again = runtime(folder, "create-user", "bob", "--config", "mine.toml", RUNTIME_PASSWORD="pw")
    assert again.returncode == 1 and "exists already" in again.stderr
