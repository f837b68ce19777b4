"""Benchmarks of the runtime's realtime fan-out against bare Python peers.

`make bench` (or `python -m benchmarks`) runs them all in one invocation and prints
ratios against the peers; see docs/performance.md. Nothing here is imported by the
runtime or needed by `make test`; the load client needs the `bench` extras.
"""
