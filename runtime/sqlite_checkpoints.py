"""SQLite's WAL checkpoints, while the app serves, on a thread of their own.

In WAL mode SQLite appends each commit to the log and now and then copies the log back
into the database file (a checkpoint). By default the commit that takes the log past
`wal_autocheckpoint` pages (1,000, about 4 MB) does it, before it returns: for a
request's write that commit is on the event loop's thread, which stopped with it, 6 to
9 ms every ~240 writes with 1,000 subscribers (measured: docs/performance.md).

While serving, connections of the serving thread do not checkpoint
(`wal_autocheckpoint = 0`, set on each one it opens); a `Checkpointer` thread, on a
connection of its own, runs a PASSIVE checkpoint, which waits for no reader or writer
and none waits for it, `INTERVAL` seconds after the last (a no-op when nothing was
committed). Python's sqlite3 lets go of the GIL while SQLite works, so the loop runs on
meanwhile. Other threads and processes (a script, a job worker, another server's
workers) checkpoint as SQLite does by default, and so does the serving thread once
serving stops.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .db import TrackingSqliteDatabase

__all__ = ["INTERVAL", "Checkpoint", "Checkpointer"]

log = logging.getLogger("runtime.db")

INTERVAL = 0.25  # seconds between checkpoints: each copies at most that long's commits


class Checkpoint(NamedTuple):
    """What `PRAGMA wal_checkpoint(PASSIVE)` answered."""

    busy: int  # 1 if it could not run at all (another checkpoint under way)
    log_frames: int  # frames in the log
    checkpointed: int  # of those, frames copied into the database file


class Checkpointer:
    """Checkpoints `database` every INTERVAL seconds while started; the thread that
    starts it (the serving thread) leaves checkpoints to it until it stops."""

    def __init__(self, database: TrackingSqliteDatabase, interval: float = INTERVAL) -> None:
        self._database = database
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ran = threading.Condition()
        self.runs = 0  # checkpoints run
        self.last: Checkpoint | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """On the serving thread: its connections stop checkpointing, the thread starts."""
        if self._thread is not None:
            return
        self._database.quiet_checkpoints(True)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="runtime-sqlite-checkpoints", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """On the serving thread: the thread ends (after one last checkpoint) and this
        thread's connections checkpoint again as SQLite does by default."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        self._database.quiet_checkpoints(False)

    def wait_for_run(self, after: int, timeout: float) -> bool:
        """Until more than `after` checkpoints have run (tests, metrics); False on
        timeout."""
        with self._ran:
            return self._ran.wait_for(lambda: self.runs > after, timeout)

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(
                self._database.database,
                isolation_level=None,
                **self._database.connect_params,  # a URI's `uri=True`, say
            )
        except sqlite3.Error as error:  # the commits then grow the log until it can
            log.error("SQLite checkpoints: cannot open the database: %s", error)
            return
        try:
            while True:
                stopping = self._stop.wait(self._interval)
                self._checkpoint(connection)
                if stopping:
                    return
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:  # a moment's trouble: the next one tries again
            log.warning("SQLite checkpoint failed: %s", error)
            return
        with self._ran:
            self.last = Checkpoint(*row)
            self.runs += 1
            self._ran.notify_all()
