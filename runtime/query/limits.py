"""The bounds every filter is parsed within (`[query]` in the configuration)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FilterLimits"]


@dataclass(frozen=True, slots=True)
class FilterLimits:
    max_length: int = 4096  # characters of the expression
    max_depth: int = 16  # nested parentheses and `!`
    max_terms: int = 100  # comparisons, each value of an `in (…)` list counted
