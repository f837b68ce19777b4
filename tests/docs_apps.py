"""The apps the docs describe, laid out as a reader would lay them out: README's
`myapp.py` with the views of docs/pages.md and client.md's "typing" route, client.md's
live page and pages.md's form as its templates, and the plain Quart app of
docs/events.md."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import base_model, registry
from runtime.db import database
from runtime.users import User
from tests.conftest import PASSWORD, PASSWORD_HASH
from tests.support import TIMEOUT, LiveServer

__all__ = [
    "ROOT",
    "blocks",
    "client_events_server",
    "commands",
    "create_users",
    "events_app",
    "my_app",
]

ROOT = Path(__file__).resolve().parent.parent


def blocks(document: str, language: str, *, section: str | None = None) -> list[str]:
    """The ```language blocks of `document` (a path from the repository's root), only
    those under the heading `section` when it is given."""
    text = (ROOT / document).read_text()
    if section is not None:
        start = re.search(rf"^#+ {re.escape(section)}$", text, flags=re.MULTILINE)
        assert start, f"{document}: no section {section!r}"
        rest = text[start.end() :]
        # The next heading outside code (a "# comment" in a block is no heading).
        fenced = re.sub(r"^```.*?^```", lambda m: " " * len(m[0]), rest, flags=re.M | re.S)
        following = re.search(r"^#+ ", fenced, flags=re.MULTILINE)
        text = rest[: following.start() if following else None]
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def commands(document: str, *, section: str | None = None) -> list[list[str]]:
    """The commands of the first ```sh block, without their comments."""
    block = blocks(document, "sh", section=section)[0]
    lines = [shlex.split(line, comments=True) for line in block.splitlines()]
    return [line for line in lines if line]


def my_app(folder: Path) -> Path:
    """README's app, with the views of docs/pages.md and client.md's "typing" route, and a
    user "ann" made as README says; returns its configuration."""
    (readme_app,) = blocks("README.md", "python", section="Your own app")
    views = blocks("docs/pages.md", "python")
    (typing,) = blocks("docs/client.md", "python", section='Custom events: "typing…"')
    (folder / "myapp.py").write_text("\n\n".join([readme_app, *views, typing]))
    (folder / "templates").mkdir()
    (live_page,) = blocks("docs/client.md", "html", section="A server-rendered page")
    (folder / "templates" / "posts.html").write_text(live_page)
    (form,) = blocks("docs/pages.md", "html", section="CSRF tokens")
    (folder / "templates" / "shout.html").write_text(form)
    config = folder / "config.toml"
    config.write_text('[app]\nlog_level = "warning"\n')
    create_user, serve = commands("README.md", section="Your own app")
    assert create_user == ["python", "-m", "runtime", "create-user", "ann"]
    assert serve == ["python", "-m", "runtime", "serve", "--app", "myapp:app"]
    assert commands("docs/pages.md") == [create_user, serve]
    create_users(folder, [create_user])
    return config


def create_users(folder: Path, create_user_commands: list[list[str]]) -> None:
    """Run a doc's `python -m runtime create-user NAME` commands in the app's folder, with
    the tests' password in RUNTIME_PASSWORD."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    for command in create_user_commands:
        assert command[:4] == ["python", "-m", "runtime", "create-user"], command
        created = subprocess.run(
            [sys.executable, *command[1:]],
            cwd=folder,
            env={**environ, "RUNTIME_PASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT * 6,
            check=False,
        )
        assert created.returncode == 0, created.stderr


def events_app(folder: Path) -> Path:
    """docs/events.md's plain Quart app as `plain.py`; returns its configuration."""
    (plain,) = blocks("docs/events.md", "python", section="Realtime in any Quart app")
    (folder / "plain.py").write_text(plain)
    config = folder / "config.toml"
    config.write_text("# the command line's defaults; plain.py configures itself\n")
    return config


@contextlib.contextmanager
def client_events_server(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """docs/events.md's client events, channels and presence app, run as written and
    served in this process (from `folder`, with the defaults), with a user "alice"."""
    (block,) = blocks("docs/events.md", "python", section="Client events, channels and presence")
    monkeypatch.chdir(folder)  # create_app() makes var/ here
    for name in list(os.environ):
        if name.startswith("RUNTIME_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(registry, "_registry", base_model.collections())
    namespace: dict[str, Any] = {"__name__": "docs_events_md"}
    exec(compile(block, "docs/events.md", "exec"), namespace)
    User.create(username="alice", password_hash=PASSWORD_HASH)
    try:
        with LiveServer(namespace["app"]) as server:
            yield server
    finally:
        database.close()
