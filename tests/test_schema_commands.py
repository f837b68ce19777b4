"""Changing your models, as docs/models.md tells it: the poll app served, a field added
and the server restarted (start-up adds the column), then a field start-up refuses and
`python -m runtime migrate` makes, run as a user runs them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.databases import both_databases
from tests.docs_apps import blocks, commands
from tests.support import TIMEOUT, ServerProcess
from tests.test_serve_app import runtime

DOC = "docs/models.md"
SECTION = "Changing your models"
QUESTION = "    question = peewee.CharField()\n"
# Each step rewrites polls.py: no bytecode, so that an import never finds an older one.
NO_BYTECODE = {"PYTHONDONTWRITEBYTECODE": "1"}


def polls(*fields: str) -> str:
    """docs/models.md's poll app, with the fields the doc adds after `question`."""
    module, *_ = blocks(DOC, "python", section=SECTION)
    assert QUESTION in module
    return module.replace(QUESTION, QUESTION + "".join(fields))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "polls.py").write_text(polls())
    (tmp_path / "config.toml").write_text('[app]\nlog_level = "warning"\n')
    return tmp_path


@both_databases
def test_a_field_with_a_default_is_added_at_start_up_over_a_real_server(
    folder: Path, database_settings: dict[str, str]
) -> None:
    settings = {f"RUNTIME_DATABASE_{k.upper()}": v for k, v in database_settings.items()}
    settings.update(NO_BYTECODE)
    _, color, _ = blocks(DOC, "python", section=SECTION)
    with (
        ServerProcess(folder / "config.toml", settings, app="polls") as server,
        httpx.Client(base_url=f"{server.url}/api/collections/polls", timeout=TIMEOUT) as http,
    ):
        assert http.post("/records", json={"question": "Tea?"}).status_code == 201
    (folder / "polls.py").write_text(polls(color))
    with (
        ServerProcess(folder / "config.toml", settings, app="polls") as server,
        httpx.Client(base_url=f"{server.url}/api/collections/polls", timeout=TIMEOUT) as http,
    ):
        created = http.post("/records", json={"question": "Coffee?", "color": "blue"})
        assert created.status_code == 201, created.text
        listed = http.get("/records").json()["items"]
        assert [(p["question"], p["color"]) for p in listed] == [
            ("Tea?", "red"),  # made before the field was
            ("Coffee?", "blue"),
        ]
    assert "Traceback" not in "".join(server.output)


def test_what_start_up_refuses_migrate_makes(folder: Path) -> None:
    _, color, votes = blocks(DOC, "python", section=SECTION)
    (refusal,) = blocks(DOC, "text", section=SECTION)
    dry_run, migrate, destructive = commands(DOC, section=SECTION)
    (folder / "polls.py").write_text(polls(color))
    with ServerProcess(folder / "config.toml", NO_BYTECODE, app="polls") as server:
        created = httpx.post(f"{server.url}/api/collections/polls/records", json={"question": "?"})
        assert created.status_code == 201

    (folder / "polls.py").write_text(polls(color, votes))
    refused = runtime(folder, "serve", "--port", "0", "--app", "polls", **NO_BYTECODE)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [refusal.strip()]  # no traceback either
    before = table(folder)

    planned = runtime(folder, *dry_run[3:], **NO_BYTECODE)
    assert planned.returncode == 0, planned.stderr
    lines = planned.stdout.splitlines()
    assert lines[0] == '-- Poll.votes: add column "votes"'
    assert 'ALTER TABLE "polls" ADD COLUMN "votes" INTEGER;' in lines
    assert lines[-1] == "-- dry run: nothing was changed"
    assert table(folder) == before

    made = runtime(folder, *migrate[3:], **NO_BYTECODE)
    assert (made.returncode, made.stdout) == (0, migrate_comment() + "\n")
    assert table(folder)["votes"] == ("INTEGER", 1)
    again = runtime(folder, *destructive[3:], **NO_BYTECODE)
    assert (again.returncode, again.stdout) == (0, "the database matches the models\n")
    with ServerProcess(folder / "config.toml", NO_BYTECODE, app="polls") as server:
        (poll,) = httpx.get(f"{server.url}/api/collections/polls/records").json()["items"]
        assert (poll["color"], poll["votes"]) == ("red", 0)


def test_destructive_changes_are_skipped_without_the_flag_and_config_follows_the_verb(
    folder: Path,
) -> None:
    _, color, _ = blocks(DOC, "python", section=SECTION)
    (folder / "polls.py").write_text(polls(color))
    (folder / "mine.toml").write_text(f"[database]\npath = {json.dumps('mine.sqlite3')}\n")
    assert runtime(folder, "migrate", "--app", "polls", "--config", "mine.toml").returncode == 0
    (folder / "polls.py").write_text(polls())
    args = ("migrate", "--app", "polls", "--config", "mine.toml")
    skipped = runtime(folder, *args, **NO_BYTECODE)
    assert (skipped.returncode, skipped.stdout) == (
        1,
        'Poll.color: drop column "color": skipped (destructive; pass --destructive)\n',
    )
    refused = runtime(folder, "serve", "--port", "0", "--app", "polls", "--config", "mine.toml")
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        'error: Poll.color: column "color" of table "polls" is no longer in the model and '
        "is NOT NULL without a default (inserts would fail): run: python -m runtime migrate "
        "--destructive --app polls --config mine.toml"
    ]
    dropped = runtime(folder, *args, "--destructive", **NO_BYTECODE)
    assert (dropped.returncode, dropped.stdout) == (0, 'Poll.color: dropped column "color"\n')
    assert set(table(folder, "mine.sqlite3")) == {"id", "question"}


def test_a_bad_auto_migrate_names_the_key(folder: Path) -> None:
    result = runtime(folder, "migrate", RUNTIME_DATABASE_AUTO_MIGRATE="sometimes")
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: database.auto_migrate: expected true")


def migrate_comment() -> str:
    """What the doc's migrate command says it prints (its comment)."""
    (block,) = blocks(DOC, "sh", section=SECTION)
    return block.splitlines()[1].split("# ", 1)[1]


def table(folder: Path, name: str = "var/runtime.sqlite3") -> dict[str, tuple[str, int]]:
    with sqlite3.connect(folder / name) as connection:
        rows = connection.execute("PRAGMA table_info(polls)").fetchall()
    return {row[1]: (row[2], row[3]) for row in rows}


def test_migrate_without_app_migrates_the_runtimes_own(tmp_path: Path) -> None:
    first = runtime(tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    assert sorted(first.stdout.splitlines()) == [
        'Message: created table "messages"',
        'Note: created table "notes"',
        'Session: created table "auth_sessions"',
        'User: created table "users"',
    ]
    assert runtime(tmp_path, "migrate").stdout == "the database matches the models\n"
