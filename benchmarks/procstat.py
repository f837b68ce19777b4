"""What Linux says about a process: CPU seconds used and resident memory."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_seconds", "cpu_since", "cpu_times", "rss_bytes"]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU time of `pid` (all its threads), in seconds. System time is
    the kernel's work for it: with a socket per subscriber, mostly `send()`, whose cost
    on loopback includes the receiver's side of TCP (and is the same for every server)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after it are plain.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return utime / _TICKS, stime / _TICKS


def cpu_since(pid: int, before: tuple[float, float]) -> tuple[float, float]:
    """CPU seconds `pid` used since `before` (a `cpu_times` reading): in all, and the
    system part. Each part is subtracted alone: the difference of two sums of float
    seconds may come out a hair below zero when nothing was used."""
    user, system = cpu_times(pid)
    return (user - before[0]) + (system - before[1]), system - before[1]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of `pid` (all its threads), in seconds."""
    user, system = cpu_times(pid)
    return user + system


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` now (VmRSS), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
