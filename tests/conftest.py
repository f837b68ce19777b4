from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from quart import Quart
from werkzeug.security import generate_password_hash

from runtime.config import Config, load_config
from runtime.db import database
from runtime.demo import create_demo_app
from runtime.users import User
from tests.access_log import Capture
from tests.databases import PostgresServer, start_postgres
from tests.redis_server import RedisServer, start_redis
from tests.support import FAST_PATH, LiveServer

PASSWORD = "correct horse battery"


@pytest.fixture
def realtime_settings() -> dict[str, object]:
    """Override in a module or with parametrize to change [realtime] for its tests."""
    return {}


def _suite_realtime_settings(realtime_settings: dict[str, object]) -> dict[str, object]:
    """A test's [realtime], in a run with the fast path off (tests/support.py) too."""
    return realtime_settings if FAST_PATH else {"fast_path": False, **realtime_settings}


@pytest.fixture
def backend() -> str:
    """The database the app runs on: `@both_databases` (tests/databases.py) runs a test
    on each."""
    return "sqlite"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the session, started when a test first needs it."""
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server for the session, started when a test first needs it; tests keep
    apart by key prefix (`redis_server.prefix()`)."""
    server = start_redis()
    yield server
    server.close()


@pytest.fixture
def database_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, str]]:
    """[database] for the test's app: an SQLite file, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield {"path": str(tmp_path / "test.sqlite3")}
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.database()
    yield {"path": str(tmp_path / "unused.sqlite3"), "url": url}
    left_open = server.connections(url)
    server.drop(url)
    # Each is a ResourceWarning waiting for the garbage collector, in some later test.
    assert left_open == 0, f"{left_open} PostgreSQL connections left open"


@pytest.fixture
def config(
    tmp_path: Path, realtime_settings: dict[str, object], database_settings: dict[str, str]
) -> Config:
    return load_config(None, environ={}).replace(
        app={"env": "test", "secret_key": "test-secret-key-0123456789", "log_level": "warning"},
        database=database_settings,
        realtime=_suite_realtime_settings(realtime_settings),
    )


@pytest.fixture
def app(config: Config) -> Iterator[Quart]:
    """The runtime's own app, as `make run` serves it: the demo and every collection."""
    app = create_demo_app(config)
    yield app
    database.close()


# Hashing is deliberately slow; hash the shared test password once per run.
PASSWORD_HASH = generate_password_hash(PASSWORD)


@pytest.fixture
def users(app: Quart) -> dict[str, User]:
    return {
        name: User.create(username=name, password_hash=PASSWORD_HASH, is_admin=name == "root")
        for name in ("alice", "bob", "root")
    }


@pytest.fixture
def server(app: Quart, users: dict[str, User]) -> Iterator[LiveServer]:
    with LiveServer(app) as live:
        yield live


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under CI (RUNTIME_TESTS_NO_SKIP=1) a skipped test is a failed test."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("RUNTIME_TESTS_NO_SKIP") == "1":
        report.outcome = "failed"
        report.longrepr = f"skipped, but skipping is not allowed here: {report.longrepr}"


@pytest.fixture
def access_log() -> Iterator[Capture]:
    """The runtime.access logger's records while the test runs."""
    logger = logging.getLogger("runtime.access")
    capture, level = Capture(), logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(level)
