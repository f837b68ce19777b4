"""The `writes` section: a create through the records API against the same create
written by hand (benchmarks/peers/bare_quart_writes.py), on SQLite and on PostgreSQL.

For each database both servers run at once, pinned to the server CPU (only one is
written to at a time), and one load client process measures both
(benchmarks/writes_load.py): server CPU per write and writes per second of each with no
subscriber, ours with `writes_subscribers` WebSocket subscribers, and write → delivery
latency with them at steady rates.

SQLite: each server its own file in the work folder, with the runtime's pragmas.
PostgreSQL: a throwaway cluster as the tests start one (tests/databases.py), a fresh
database for each server. Its backends are processes of their own, not pinned, and
their CPU is not the server's: the PostgreSQL figures compare the Python side of a
write.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.databases import PostgresServer, find_postgres

from .harness import Cpus, Log, connector, run_load, trouble
from .targets import BARE_WRITES, OURS, running

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["DATABASES", "postgres_cluster", "writes"]

DATABASES = ("sqlite", "postgresql")
P99_LIMIT_MS = 50.0
FRACTIONS = (0.25, 0.5, 0.75)


def writes(
    plan: Plan, workdir: Path, cpus: Cpus, log: Log, *, postgres: PostgresServer | None = None
) -> dict[str, Any]:
    """Both databases, each measured as `_measure` says; PostgreSQL on `postgres` when
    given (a running cluster: the smoke test's), else on a cluster of its own."""
    results: dict[str, Any] = {}
    for database in DATABASES:
        try:
            if database == "sqlite":
                sqlite = workdir / "bare-writes.sqlite3"
                for stale in workdir.glob("bare-writes.sqlite3*"):
                    stale.unlink()
                results[database] = _measure(plan, workdir, cpus, log, database, str(sqlite))
            elif postgres is not None:
                results[database] = _measure(plan, workdir, cpus, log, database, postgres)
            else:
                with postgres_cluster() as cluster:
                    results[database] = _measure(plan, workdir, cpus, log, database, cluster)
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            # The other database's figures still count.
            log(f"  {database} failed: {error}")
            results[database] = {"error": str(error)[:2000]}
    return results


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresServer]:
    """A started throwaway PostgreSQL cluster (tests/databases.py), always removed."""
    bindir = find_postgres()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    cluster = PostgresServer(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _measure(
    plan: Plan,
    workdir: Path,
    cpus: Cpus,
    log: Log,
    database: str,
    where: str | PostgresServer,
) -> dict[str, Any]:
    if isinstance(where, PostgresServer):
        bare_settings = {"BENCH_DATABASE_URL": where.database()}
        our_settings = {"RUNTIME_DATABASE_URL": where.database()}
    else:
        bare_settings, our_settings = {"BENCH_SQLITE_PATH": where}, {}
    with contextlib.ExitStack() as stack:
        # Started side by side: ours spends its first seconds seeding its database.
        with ThreadPoolExecutor(2) as pool:
            started = [
                pool.submit(stack.enter_context, running(server, workdir, cpus.server, settings))
                for server, settings in ((BARE_WRITES, bare_settings), (OURS, our_settings))
            ]
        (bare, bare_process), (ours, our_process) = (future.result() for future in started)
        spec = {
            "scenario": "writes",
            "cpu": cpus.load,
            "bare": {"server_pid": bare.pid, "publish": bare.publish_target()},
            "ours": {
                "server_pid": ours.pid,
                "publish": ours.publish_target(),
                "connector": connector(ours, "ws"),
            },
            "burst": plan.writes_burst,
            "subscribed_burst": plan.writes_subscribed_burst,
            "repeats": plan.repeats + 1,
            "subscribers": plan.writes_subscribers,
            "latency": {
                "fractions": list(FRACTIONS),
                "paced_seconds": plan.writes_paced_seconds,
                "limit_ms": P99_LIMIT_MS,
                "search_steps": plan.writes_search_steps,
            },
        }
        result = run_load(spec, 900)
        result["database"] = database
        result["server_trouble"] = trouble(bare_process) + trouble(our_process)
    _log(log, database, result)
    return result


def _log(log: Log, database: str, result: dict[str, Any]) -> None:
    for name in ("bare", "ours"):
        rates = ", ".join(f"{b['writes_per_second']:,.0f}" for b in result[name])
        cpu = ", ".join(f"{b['server_cpu_us_per_write']:,.0f}" for b in result[name])
        log(f"  {database:10} {name:4} alone: {rates} writes/s; {cpu} µs CPU/write")
    rates = ", ".join(f"{b['writes_per_second']:,.0f}" for b in result["subscribed"])
    log(f"  {database:10} ours, {result['subscribers']:,} subscribers: {rates} writes/s")
    latency = result.get("latency") or {}
    for run in [*latency.get("fixed", []), *latency.get("search", [])]:
        log(
            f"  {database:10} {run['writes_per_second']:7.1f} writes/s: p50 "
            f"{run['p50_ms'] or 0:.1f} ms, p99 {run['p99_ms'] or 0:.1f} ms "
            f"({run['deliveries']:,}/{run['expected']:,}; CPU busy: server "
            f"{run['server_cpu_share']:.0%}, {run.get('server_system_share') or 0:.0%} in "
            f"the kernel; load client {run.get('load_cpu_share') or 0:.0%})"
        )
