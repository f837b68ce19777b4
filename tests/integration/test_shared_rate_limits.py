"""Login and records-API limits counted in Redis (issue 14): with a Redis broker, every
process counts the same failed logins and the same requests; a rate-limit Redis out of
reach stops the server at start with one line naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from runtime.ratelimit import storage_uri
from tests.cluster import create_user
from tests.redis_server import RedisServer
from tests.support import TIMEOUT, ServerProcess, assert_error, free_port

pytestmark = pytest.mark.cluster  # server processes of their own


@pytest.mark.parametrize(
    "setting, broker, expected",
    [
        ("", "memory", ("memory://", "auth.rate_limit_storage")),
        ("", "redis://h:6379/2", ("redis://h:6379/2", "realtime.broker")),
        ("", "rediss://:pw@h/1", ("rediss://:pw@h/1", "realtime.broker")),
        ("", "unix:///run/r.sock", ("redis+unix:///run/r.sock", "realtime.broker")),
        ("memory://", "redis://h/0", ("memory://", "auth.rate_limit_storage")),
        ("redis://other/3", "redis://h/0", ("redis://other/3", "auth.rate_limit_storage")),
    ],
)
def test_the_limits_count_in_the_brokers_redis_unless_told_otherwise(
    setting: str, broker: str, expected: tuple[str, str]
) -> None:
    assert storage_uri(setting, broker) == expected


async def test_a_login_limit_counts_the_attempts_made_on_every_process(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "RUNTIME_REALTIME_BROKER": redis_server.database(),
        "RUNTIME_AUTH_LOGIN_LIMIT_PER_USER": "2/minute",
    }
    config = tmp_path / "config.toml"
    with ServerProcess(config, settings) as first:
        create_user(tmp_path, settings, "alice")
        with ServerProcess(config, settings) as second:
            wrong = {"username": "alice", "password": "not the password"}
            for server in (first, second):  # one failed attempt on each
                async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
                    assert_error(await http.post("/auth/login", json=wrong), 401, "unauthorized")
            for server in (first, second):
                async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
                    refused = await http.post("/auth/login", json=wrong)
                    assert_error(refused, 429, "rate_limited")
                    assert int(refused.headers["Retry-After"]) >= 1


async def test_the_records_api_limit_counts_the_requests_made_on_every_process(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "RUNTIME_REALTIME_BROKER": redis_server.database(),
        "RUNTIME_API_RATE_LIMIT": "2/minute",
    }
    config = tmp_path / "config.toml"
    path = "/api/collections/messages/records"
    with ServerProcess(config, settings) as first, ServerProcess(config, settings) as second:
        for server in (first, second):  # one request on each, from one address
            async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
                assert (await http.get(path)).status_code == 200
        for server in (first, second):
            async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
                refused = await http.get(path)
                assert_error(refused, 429, "rate_limited")
                assert int(refused.headers["Retry-After"]) >= 1


def test_a_rate_limit_redis_out_of_reach_stops_the_server_with_one_line(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    environ.update(
        RUNTIME_DATABASE_PATH=str(tmp_path / "db.sqlite3"),
        RUNTIME_AUTH_RATE_LIMIT_STORAGE=f"redis://:secret@127.0.0.1:{free_port()}/0",
    )
    (tmp_path / "config.toml").write_text("")
    ran = subprocess.run(
        [sys.executable, "-m", "runtime", "--config", "config.toml", "serve", "--port", "0"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 6,
        check=False,
    )
    assert ran.returncode == 2, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: auth.rate_limit_storage: "), lines
    assert "cannot reach" in lines[0] and "secret" not in lines[0]
