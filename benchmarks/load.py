"""The load client: one process, pinned to its own CPU, on uvloop.

    python -m benchmarks.load < spec.json

The spec names a scenario (`fanout`, `idle`, `publish_cost`, `soak`, `spread`,
`write_rate`, `writes`) and its options;
the result is printed as one line `RESULT {json}`. The harness (`benchmarks.suite`)
starts one of these per measurement.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from . import scenarios, soak, spread, writes_load

__all__ = ["main"]

SCENARIOS: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "fanout": scenarios.fanout,
    "idle": scenarios.idle,
    "publish_cost": scenarios.publish_cost,
    "soak": soak.soak,
    "spread": spread.spread,
    "write_rate": scenarios.write_rate,
    "writes": writes_load.writes,
}


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    result = await asyncio.wait_for(SCENARIOS[spec["scenario"]](spec), spec["time_limit"])
    wall = time.perf_counter() - started_wall
    result["load_client"] = {
        "seconds": wall,
        "cpu_seconds": time.process_time() - started_cpu,
        "cpu_share": (time.process_time() - started_cpu) / wall if wall else None,
    }
    return result


def main() -> int:
    spec = json.loads(sys.stdin.read())
    if spec.get("cpu") is not None:
        os.sched_setaffinity(0, {spec["cpu"]})
    result = uvloop.run(_run(spec))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
