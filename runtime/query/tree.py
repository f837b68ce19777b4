"""A parsed filter: a tree of frozen dataclasses, positions kept for error messages.

Names are not yet checked against a model, nor values converted to a field's type:
`runtime.query.bind` does that for one model and one user.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COMPARISONS",
    "All",
    "Any",
    "Comparison",
    "Literal",
    "Me",
    "Membership",
    "Node",
    "Not",
    "Value",
]

# Every comparison operator; `~` and `!~` are contains / does not contain.
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=", "~", "!~")


@dataclass(frozen=True, slots=True)
class Literal:
    """Quoted text (str), a number (int or float), true/false (bool) or null (None)."""

    value: str | int | float | bool | None
    position: int


@dataclass(frozen=True, slots=True)
class Me:
    """`@me`: the current user's id, null for a visitor."""

    position: int


Value = Literal | Me


@dataclass(frozen=True, slots=True)
class Comparison:
    field: str
    operator: str  # one of COMPARISONS
    value: Value
    position: int  # of the field's name


@dataclass(frozen=True, slots=True)
class Membership:
    """`field in (a, b, …)`, or `field !in (…)` when `negated`."""

    field: str
    values: tuple[Value, ...]
    negated: bool
    position: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class All:
    """`a && b && …`: two operands or more."""

    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Any:
    """`a || b || …`: two operands or more."""

    operands: tuple[Node, ...]


Node = Comparison | Membership | Not | All | Any
