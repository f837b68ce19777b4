"""The databases tests run against: SQLite files, and a throwaway PostgreSQL cluster.

`both_databases` runs a test once on each. PostgreSQL is Debian's (`apt-get install
postgresql`; `.ci/run` installs it), found under /usr/lib/postgresql/*/bin or on PATH, or
where `RUNTIME_TESTS_POSTGRES_BIN` says. The cluster lives in a temporary folder, listens
on 127.0.0.1 and a free port only, trusts local connections, and is removed with the
test session. As root it runs as the `postgres` user (initdb refuses root).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import TIMEOUT, free_port

__all__ = ["BACKENDS", "PostgresServer", "both_databases", "find_postgres"]

BACKENDS = ("sqlite", "postgresql")
both_databases = pytest.mark.parametrize("backend", BACKENDS)


def find_postgres() -> Path | None:
    """The folder of initdb and pg_ctl, if PostgreSQL is installed."""
    given = os.environ.get("RUNTIME_TESTS_POSTGRES_BIN")
    if given:
        return Path(given)
    # Debian keeps them off PATH, one folder per major version: take the newest.
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    found.sort(key=lambda p: int(v) if (v := Path(p).parent.parent.name).isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A PostgreSQL cluster of our own; `database()` makes a fresh, empty database."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="runtime-pg-"))
        self.port = free_port()
        self._names = itertools.count(1)
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        subprocess.run(
            [*self._as, *command],
            check=True,
            capture_output=True,
            timeout=TIMEOUT * 12,
            cwd=self.folder,
        )

    def start(self) -> None:
        data = self.folder / "data"
        self._run(
            str(self.bindir / "initdb"),
            *("-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"),
        )
        # Durability is not under test: without fsync the suite runs much faster.
        options = (
            f"-k {self.folder} -h 127.0.0.1 -p {self.port} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            *("-D", str(data), "-l", str(self.folder / "log"), "-o", options),
            *("-w", "-t", str(int(TIMEOUT * 6)), "start"),
        )

    def stop(self) -> None:
        try:
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "stop"
            )
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def database(self) -> str:
        """A new empty database; its URL."""
        name = f"test_{next(self._names)}"
        self._admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop(self, url: str) -> None:
        # FORCE: a connection a failed test left open must not keep the database alive.
        self._admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")

    def connections(self, url: str) -> int:
        """Connections open to that database (other than this question's own), once
        those being closed have gone. A backend whose client has just hung up leaves
        pg_stat_activity a moment later, and nothing tells when: a count above zero is
        asked again, every 20 ms, until it is zero or TIMEOUT has passed."""
        import psycopg

        name = url.rsplit("/", 1)[1]
        deadline = time.monotonic() + TIMEOUT
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            while True:
                row: Any = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
                ).fetchone()
                if int(row[0]) == 0 or time.monotonic() >= deadline:
                    return int(row[0])
                time.sleep(0.02)  # a backend's exit cannot be waited on from here


def start_postgres() -> PostgresServer:
    """A started cluster, or a skip saying what is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL tests need psycopg: pip install -e '.[test]'")
    bindir = find_postgres()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed: apt-get install postgresql")
    server = PostgresServer(bindir)
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(server.folder, ignore_errors=True)
        output = (exc.stdout or b"").decode() + (exc.stderr or b"").decode()
        raise RuntimeError(f"PostgreSQL did not start: {output.strip()}") from None
    return server
