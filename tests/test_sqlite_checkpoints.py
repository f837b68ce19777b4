"""WAL checkpoints on a thread of their own while serving (runtime/sqlite_checkpoints.py):
the serving thread's connections do not checkpoint, the Checkpointer's thread keeps the
log from growing, and once serving stops everything is as SQLite has it by default."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from quart import Quart

from runtime.db import AUTOCHECKPOINT_PAGES, SQLITE_PRAGMAS, TrackingSqliteDatabase, database
from runtime.sqlite_checkpoints import Checkpointer

TIMEOUT = 10.0
ROW = "x" * 3000  # about one page of its own per row


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[TrackingSqliteDatabase]:
    db = TrackingSqliteDatabase(str(tmp_path / "wal.sqlite3"), pragmas=SQLITE_PRAGMAS)
    db.connect()
    db.execute_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    yield db
    if not db.is_closed():
        db.close()


def autocheckpoint(db: TrackingSqliteDatabase) -> int:
    pages: int = db.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0]
    return pages


def in_another_thread(db: TrackingSqliteDatabase) -> int:
    found: list[int] = []

    def read() -> None:
        with db.connection_context():
            found.append(autocheckpoint(db))

    thread = threading.Thread(target=read)
    thread.start()
    thread.join(TIMEOUT)
    return found[0]


def write(db: TrackingSqliteDatabase, rows: int) -> None:
    for _ in range(rows):
        with db.atomic():
            db.execute_sql("INSERT INTO t (body) VALUES (?)", (ROW,))


def all_checkpointed(checkpointer: Checkpointer) -> None:
    """Until a checkpoint that started after now has copied the whole log."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        runs = checkpointer.runs
        assert checkpointer.wait_for_run(runs + 1, TIMEOUT), "no checkpoint ran"
        last = checkpointer.last
        assert last is not None and not last.busy
        if last.checkpointed == last.log_frames:
            return
    raise AssertionError(f"the log was never copied whole: {checkpointer.last}")


def test_the_serving_thread_leaves_checkpoints_to_the_checkpointer(
    sqlite: TrackingSqliteDatabase,
) -> None:
    checkpointer = Checkpointer(sqlite, interval=0.01)
    assert autocheckpoint(sqlite) == AUTOCHECKPOINT_PAGES
    checkpointer.start()
    try:
        assert checkpointer.running
        assert autocheckpoint(sqlite) == 0
        sqlite.close()
        sqlite.connect()  # a connection it opens later is quiet too
        assert autocheckpoint(sqlite) == 0
        assert in_another_thread(sqlite) == AUTOCHECKPOINT_PAGES
    finally:
        checkpointer.stop()
    assert not checkpointer.running
    assert autocheckpoint(sqlite) == AUTOCHECKPOINT_PAGES


def test_the_checkpointer_keeps_the_log_from_growing(sqlite: TrackingSqliteDatabase) -> None:
    """6,000 pages written by a thread that never checkpoints, 200 between checkpoints:
    the log is reused from its start after each, and stays near 200 pages. (Without
    the checkpointer it would hold all 6,000: about 24 MB.)"""
    wal = Path(sqlite.database + "-wal")
    page_size: int = sqlite.execute_sql("PRAGMA page_size").fetchone()[0]
    checkpointer = Checkpointer(sqlite, interval=0.01)
    checkpointer.start()
    try:
        for _ in range(30):
            write(sqlite, 200)
            all_checkpointed(checkpointer)
        largest_log = wal.stat().st_size
    finally:
        checkpointer.stop()
    assert largest_log < 1000 * page_size, f"the log grew to {largest_log} bytes"
    assert sqlite.execute_sql("SELECT count(*) FROM t").fetchone()[0] == 6000


async def test_the_app_checkpoints_while_it_serves(app: Quart) -> None:
    """An app on SQLite starts its checkpointer with serving, on the serving thread, and
    stops it when serving stops."""
    checkpointer: Checkpointer = app.extensions["sqlite_checkpointer"]
    assert not checkpointer.running
    await app.startup()
    try:
        assert checkpointer.running
        assert autocheckpoint(database.obj) == 0
    finally:
        await app.shutdown()
    assert not checkpointer.running
    database.connect(reuse_if_open=True)
    assert autocheckpoint(database.obj) == AUTOCHECKPOINT_PAGES
