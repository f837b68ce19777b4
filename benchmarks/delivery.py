"""Checking what each subscriber received against what was published: every event
exactly once, in order. Pure, so the soak's verdict is unit-tested."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

__all__ = ["verify"]


def verify(received: Sequence[Sequence[int]], published: Sequence[int]) -> dict[str, Any]:
    """Each subscriber's record ids, as they came, against the ids published."""
    expected = sorted(published)
    wanted = set(expected)
    report = {"clients": len(received), "exact": 0, "missing": 0, "duplicates": 0}
    report.update({"out_of_order": 0, "unexpected": 0})
    for got in received:
        if list(got) == expected:
            report["exact"] += 1
            continue
        seen = set(got)
        report["missing"] += len(wanted - seen)
        report["duplicates"] += len(got) - len(seen)
        report["unexpected"] += len(seen - wanted)
        report["out_of_order"] += sum(1 for a, b in itertools.pairwise(got) if b <= a)
    return report
