"""Opening databases: URLs told without passwords, and one clear line when a database
cannot be used (runtime/db.py, runtime/database_url.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from runtime import create_app
from runtime.config import load_config
from runtime.database_url import redacted
from runtime.db import (
    DatabaseUnavailable,
    TrackingDatabase,
    TrackingPostgresqlDatabase,
    TrackingSqliteDatabase,
    database,
    require_databases,
    tracking_database,
)
from runtime.users import User


@pytest.fixture(autouse=True)
def default_database_restored() -> Iterator[None]:
    previous = database.obj
    yield
    database.initialize(previous)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


@pytest.mark.parametrize(
    ("url", "told"),
    [
        ("postgresql://app:s3cret@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("postgres://app@db/app?password=s3cret&x=1", "postgres://app@db/app?password=***&x=1"),
        ("postgresql:///app?host=/run/postgresql", "postgresql:///app?host=/run/postgresql"),
        ("var/runtime.sqlite3", "var/runtime.sqlite3"),
    ],
)
def test_urls_are_told_without_their_password(url: str, told: str) -> None:
    assert redacted(url) == told


def test_a_path_is_sqlite_and_a_url_postgresql(tmp_path: Path) -> None:
    sqlite = tracking_database(str(tmp_path / "deep" / "folder" / "x.sqlite3"))
    assert (tmp_path / "deep" / "folder").is_dir()
    assert isinstance(sqlite, TrackingSqliteDatabase) and TrackingDatabase is TrackingSqliteDatabase
    postgres = tracking_database("postgres://app@db:5432/app")
    assert isinstance(postgres, TrackingPostgresqlDatabase)
    assert postgres.database == "postgresql://app@db:5432/app"  # the scheme Peewee knows


def test_an_unreachable_database_stops_create_app_with_one_line() -> None:
    url = f"postgresql://app:s3cret@127.0.0.1:{closed_port()}/app"
    config = load_config(None, environ={}).replace(
        app={"env": "test", "log_level": "warning"}, database={"url": url}
    )
    with pytest.raises(DatabaseUnavailable) as failure:
        create_app(config)
    text = str(failure.value)
    assert text.startswith("database.url: database 'postgresql://app:***@127.0.0.1:")
    assert "cannot connect" in text and "s3cret" not in text and "\n" not in text


def test_what_require_databases_says() -> None:
    database.initialize(None)
    with pytest.raises(DatabaseUnavailable, match=r"^realtime: collection 'users': no database"):
        require_databases([User])
    proxy = peewee.DatabaseProxy()
    with pytest.raises(DatabaseUnavailable, match="DatabaseProxy was never initialized"):
        require_databases([], proxy)
    proxy.initialize(peewee.SqliteDatabase(":memory:"))
    with pytest.raises(DatabaseUnavailable, match="a SqliteDatabase announces no changes"):
        require_databases([], proxy)
    with pytest.raises(DatabaseUnavailable, match=r"never given a name"):
        require_databases([], TrackingSqliteDatabase(None))
    missing = TrackingSqliteDatabase("/nonexistent-folder/x.sqlite3")
    with pytest.raises(DatabaseUnavailable, match=r"the database given: cannot connect: unable"):
        require_databases([], missing)
    fine = TrackingSqliteDatabase(":memory:")
    require_databases([], fine)
    assert fine.is_closed()  # a connection opened only to try it is closed again
