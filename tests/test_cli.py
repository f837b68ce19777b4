"""The command line, run as a user would: a separate Python process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from runtime.database_url import redacted
from tests.databases import PostgresServer
from tests.support import REPOSITORY, TIMEOUT, ServerProcess


def run(
    tmp_path: Path, *args: str, config: str = "config.toml", **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    environ.update({"RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3"), **env})
    # This checkout's runtime, not the one the venv's editable install points at.
    environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPOSITORY), environ.get("PYTHONPATH")])
    )
    (tmp_path / "config.toml").touch()
    return subprocess.run(
        [sys.executable, "-m", "runtime", "--config", str(tmp_path / config), *args],
        capture_output=True,
        text=True,
        env=environ,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT * 6,
        check=False,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run(tmp_path, "--help")
    assert result.returncode == 0
    assert "serve" in result.stdout and "create-user" in result.stdout


def test_create_user_from_the_environment(tmp_path: Path) -> None:
    result = run(tmp_path, "create-user", "carol", "--admin", RUNTIME_PASSWORD="pw-of-carol")
    assert result.returncode == 0, result.stderr
    assert "created admin user 'carol'" in result.stdout
    again = run(tmp_path, "create-user", "carol", RUNTIME_PASSWORD="x")
    assert again.returncode == 1 and "exists already" in again.stderr

    from runtime.config import load_config
    from runtime.db import database, open_database
    from runtime.users import User

    open_database(
        load_config(None, environ={})
        .replace(database={"path": str(tmp_path / "db.sqlite3")})
        .database.path
    )
    try:
        carol = User.get(User.username == "carol")
        assert carol.is_admin and carol.check_password("pw-of-carol")
    finally:
        database.close()


def test_create_user_without_a_password_source_fails_clearly(tmp_path: Path) -> None:
    result = run(tmp_path, "create-user", "dave")
    assert result.returncode == 1 and "RUNTIME_PASSWORD" in result.stderr


def test_a_bad_config_value_stops_start_up_with_one_line(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", RUNTIME_API_PAGE_SIZE="lots")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "api.page_size" in lines[0]


def test_production_refuses_the_default_secret(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", RUNTIME_APP_ENV="production")
    assert result.returncode == 2 and "app.secret_key" in result.stderr


def test_a_config_file_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", config="nope.toml")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"configuration error: --config: no file {str(tmp_path / 'nope.toml')!r}"
    )


def test_a_database_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    url = "postgresql://app:hunter2-secret@127.0.0.1:1/nothing_here"  # nothing listens
    for args in (("serve",), ("create-user", "erin")):
        result = run(tmp_path, *args, RUNTIME_DATABASE_URL=url, RUNTIME_PASSWORD="pw")
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: database.url"), lines
        assert "hunter2-secret" not in result.stderr  # the password is never shown


def test_the_demo_on_postgresql_starts_in_a_fresh_folder(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.database()
    try:
        with ServerProcess(tmp_path / "config.toml", {"RUNTIME_DATABASE_URL": url}) as server:
            assert httpx.get(f"{server.url}/login", timeout=TIMEOUT).status_code == 200
        output = "".join(server.output)
        assert f"  Database: {redacted(url)}\n" in output  # the demo's banner too
        assert f"  Config:   {tmp_path / 'config.toml'}\n" in output
        assert "username: demo" in (tmp_path / "var" / "demo-credentials.txt").read_text()
    finally:
        postgres.drop(url)
