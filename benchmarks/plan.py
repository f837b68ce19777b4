"""What a run measures, and how much of it: the full suite and the quick one."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Plan"]


@dataclass(frozen=True)
class Plan:
    levels: tuple[int, ...]  # subscribers in the fan-out runs
    deliveries_per_level: int  # events per level = this / subscribers
    repeats: int  # bursts per level; the best counts
    latency_subscribers: int
    latency_events: int
    paced_seconds: float
    idle_levels: tuple[int, ...]  # connections whose memory is measured
    scale_connections: int  # held with heartbeats (ours)
    heartbeat: float  # seconds, for the scale test
    other_connections: int  # publish cost: connections of unrelated subscriptions
    patterns_per_connection: int
    cost_events: int
    soak_seconds: float
    soak_websocket: int
    soak_sse: int
    soak_reconnect_every: float
    soak_events_per_second: float
    hook_inserts: int
    hook_rounds: int
    scaleout_levels: tuple[int, ...]  # subscribers, Redis fan-out against memory
    scaleout_subscribers: int  # spread over two processes on Redis, for latency
    scaleout_writes_per_second: float  # the goal's rate
    scaleout_sustained_per_second: float  # and one this machine keeps up with
    scaleout_seconds: float
    outbox_writes: int  # records-API writes per burst, with the outbox and without
    expand_subscribers: int = 1000  # fan-out with expand=author against without
    # Runs of each, alternating on fresh servers: the burst rates of this machine swing
    # by half from run to run, more than what expand costs.
    expand_rounds: int = 3
    # The `writes` section (benchmarks/writes.py): creates per burst with no subscriber
    # and with `writes_subscribers` (each then delivered that many times), seconds of
    # each steady rate, and the bisection's steps for the highest rate under 50 ms p99.
    writes_burst: int = 2000
    writes_subscribed_burst: int = 300
    writes_subscribers: int = 1000
    writes_paced_seconds: float = 3.0
    writes_search_steps: int = 4


FULL = Plan(
    levels=(100, 1000, 5000),
    deliveries_per_level=100_000,
    repeats=2,
    latency_subscribers=1000,
    latency_events=50,
    paced_seconds=3.0,
    idle_levels=(1000,),
    scale_connections=10_000,
    heartbeat=5.0,
    other_connections=1000,
    patterns_per_connection=100,
    cost_events=1000,
    soak_seconds=180.0,
    soak_websocket=1000,
    soak_sse=100,
    soak_reconnect_every=30.0,
    soak_events_per_second=10.0,
    hook_inserts=2000,
    hook_rounds=5,
    scaleout_levels=(1000, 5000),
    scaleout_subscribers=1000,
    scaleout_writes_per_second=100.0,
    scaleout_sustained_per_second=20.0,
    scaleout_seconds=10.0,
    outbox_writes=2000,
)

QUICK = Plan(
    levels=(100, 1000),
    deliveries_per_level=20_000,
    repeats=1,
    latency_subscribers=1000,
    latency_events=10,
    paced_seconds=1.5,
    idle_levels=(500,),
    scale_connections=2000,
    heartbeat=1.0,
    other_connections=100,
    patterns_per_connection=100,
    cost_events=300,
    soak_seconds=20.0,
    soak_websocket=200,
    soak_sse=20,
    soak_reconnect_every=6.0,
    soak_events_per_second=10.0,
    hook_inserts=300,
    hook_rounds=3,
    expand_rounds=1,
    scaleout_levels=(1000,),
    scaleout_subscribers=1000,
    scaleout_writes_per_second=100.0,
    scaleout_sustained_per_second=20.0,
    scaleout_seconds=2.0,
    outbox_writes=300,
    writes_burst=300,
    writes_subscribed_burst=60,
    writes_paced_seconds=1.0,
    writes_search_steps=2,
)
