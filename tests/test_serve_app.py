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
from tests.support import TIMEOUT, ServerProcess, assert_error

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
        ("myapp", "expected module:attribute"),
        (":app", "expected module:attribute"),
        ("nowhere:app", "no module named 'nowhere'"),
        ("myapp:nothing", "has no attribute 'nothing'"),
        ("myapp:title", "title is a str, not a Quart app or factory"),
        ("myapp:needs_arguments", "needs_arguments() needs arguments"),
        ("myapp:returns_nothing", "returns_nothing() returned a NoneType, not a Quart app"),
    ],
)
def test_a_bad_app_is_one_line_and_exit_code_2(folder: Path, spec: str, says: str) -> None:
    result = runtime(folder, "--config", "mine.toml", "serve", "--port", "0", "--app", spec)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: --app {spec!r}: ") and says in line, line


def test_an_error_in_the_apps_own_code_keeps_its_traceback(folder: Path) -> None:
    (folder / "broken.py").write_text("import not_installed_anywhere\n")
    result = runtime(folder, "serve", "--port", "0", "--app", "broken:app")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "not_installed_anywhere" in result.stderr
