"""What the change hook adds to an ORM insert, measured in one process:

    python -m benchmarks.hook_cost '{"workdir": "...", "inserts": 2000, "rounds": 5}'

Four ways to insert the same row into the same SQLite file (WAL, the runtime's
pragmas), alternating in rounds so that drift hits all alike: plain Peewee; the
runtime's `Message.create()` with no outbox and nothing listening (what the write
costs without the guarantee that its event outlives a crash); with the outbox (its
event's row written in its transaction) and nothing listening: the create itself; and
with realtime's hook, the outbox's relay, listening: each committed row handed to the
broker and its event published (no subscriber), the event loop given its turn so that
the relay keeps up. And an update of one row by plain Peewee and by the runtime's
`save()` (which reads the values it writes first), hooked. The relay's poll is set
long, so that it reads nothing while it is not listening; the rows written then are
published after that round, outside the time measured. Prints `RESULT {json}`; the
median round of each counts.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import peewee

from runtime import create_app
from runtime.config import load_config
from runtime.db import database, on_commit
from runtime.demo import Message
from runtime.users import User

__all__ = ["main"]

PRAGMAS = {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 5000, "synchronous": "normal"}
TEXT = "b00000000 " + "x" * 30


async def _measure(spec: dict[str, Any]) -> dict[str, Any]:
    workdir = Path(spec["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "hook.sqlite3"
    for stale in workdir.glob("hook.sqlite3*"):
        stale.unlink()
    config = load_config(None, environ={}).replace(
        app={"env": "test", "log_level": "warning"},
        database={"path": str(path)},
        realtime={"outbox_poll": 3600.0},  # the relay reads when told, only
    )
    app = create_app(config)
    author = User.create(username="bench", password_hash="-")

    plain_db = peewee.SqliteDatabase(str(path), pragmas=PRAGMAS)

    class PlainMessage(peewee.Model):
        text = peewee.CharField(max_length=500)
        author_id = peewee.IntegerField()
        created_at = peewee.DateTimeField(default=datetime.datetime.now)

        class Meta:
            database = plain_db
            table_name = "plain_messages"

    plain_db.create_tables([PlainMessage])

    await app.startup()  # realtime: the broker starts, its relay listens to the outbox
    # The receivers realtime connected, to take them off and put them back per round
    # (the signal has no public list of its receivers), and the outbox's listeners (its
    # relay), which hand each commit's rows to the broker.
    receivers = list(on_commit._receivers)
    writer = database.obj.outbox
    relays = list(writer.listeners)
    stats = app.extensions["realtime"].broker.stats

    def plain() -> None:
        PlainMessage.create(text=TEXT, author_id=author.id)

    def runtime_model() -> None:
        Message.create(text=TEXT, author=author)

    # Updates of one row, its text alternating: the runtime's reads the values it
    # writes first (who saw the record before is judged on them), in its transaction.
    plain_row = PlainMessage.create(text=TEXT, author_id=author.id)
    runtime_row = Message.create(text=TEXT, author=author)
    texts = [TEXT, TEXT.upper()]
    turns = [0]

    def plain_update() -> None:
        turns[0] += 1
        with plain_db.atomic():
            PlainMessage.update(text=texts[turns[0] % 2]).where(
                PlainMessage.id == plain_row.id
            ).execute()

    def runtime_update() -> None:
        turns[0] += 1
        runtime_row.text = texts[turns[0] % 2]
        runtime_row.save()

    def without_outbox() -> None:
        database.obj.outbox = None
        try:
            Message.create(text=TEXT, author=author)
        finally:
            database.obj.outbox = writer

    async def published(count: int) -> None:
        """Until `count` events in all went through the pipeline (at most 30 s)."""
        deadline = time.perf_counter() + 30
        while stats.published < count and time.perf_counter() < deadline:
            await asyncio.sleep(0)

    async def timed(insert: Callable[[], None], count: int, hooked: bool) -> float:
        for receiver in receivers:
            (on_commit.connect if hooked else on_commit.disconnect)(receiver)
        writer.listeners[:] = relays if hooked else []
        before, newest = stats.published, writer.table.newest()
        started = time.perf_counter()
        for i in range(count):
            insert()
            if i % 50 == 49:
                await asyncio.sleep(0)  # the relay's turn, as between requests
        if hooked:  # until every event is through the pipeline
            await published(before + count)
        elapsed = (time.perf_counter() - started) / count
        if not hooked:  # the rows written meanwhile published now, not timed
            written = writer.table.newest() - newest
            writer.listeners[:] = relays
            runtime_model()  # its commit wakes the relay, which reads the rest
            await published(before + written + 1)
        return elapsed

    variants: dict[str, tuple[Callable[[], None], bool]] = {
        "plain Peewee": (plain, False),
        "BaseModel, no outbox": (without_outbox, False),
        "BaseModel, no receiver": (runtime_model, False),  # outbox written, not relayed
        "BaseModel + realtime hook": (runtime_model, True),
        "plain Peewee update": (plain_update, False),
        "BaseModel update + realtime hook": (runtime_update, True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    count = spec["inserts"]
    for insert, hooked in variants.values():  # warm-up, not counted
        await timed(insert, min(100, count), hooked)
    for _ in range(spec["rounds"]):
        for name, (insert, hooked) in variants.items():
            times[name].append(await timed(insert, count, hooked))
    for receiver in receivers:
        on_commit.connect(receiver)
    writer.listeners[:] = relays
    await app.shutdown()
    plain_db.close()
    database.close()
    return {
        "inserts": count,
        "rounds": spec["rounds"],
        "variants": {
            name: {
                "us_per_insert": 1e6 * statistics.median(samples),
                "rounds_us": [1e6 * s for s in samples],
            }
            for name, samples in times.items()
        },
    }


def main() -> int:
    spec = json.loads(sys.argv[1])
    result = asyncio.run(_measure(spec))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
