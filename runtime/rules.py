"""Access rules: who may read, create, update or delete a collection's records.

A rule is one of the names in `RULE_NAMES` or a function `(user, record) -> bool`.
The same rules govern the records API and realtime events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "RULE_NAMES",
    "Rule",
    "UserLike",
    "check_rule",
    "collection_may_be_readable",
    "rule_could_pass",
]

RULE_NAMES = ("public", "authenticated", "owner", "admin", "nobody")


class UserLike(Protocol):
    id: Any
    is_admin: bool


Rule = str | Callable[[Any, Any], bool]


def check_rule(rule: Rule, user: UserLike | None, record: Any, owner_field: str | None) -> bool:
    """Whether `user` (None for a visitor) passes `rule` for `record`."""
    if rule == "public":
        return True
    if user is None:
        return False  # visitors only ever pass "public"
    if rule == "authenticated":
        return True
    if rule == "admin":
        return bool(user.is_admin)
    if rule == "nobody":
        return False
    if rule == "owner":
        assert owner_field is not None
        owner_id = record.__data__.get(owner_field)
        return owner_id is not None and owner_id == user.id
    if callable(rule):
        return bool(rule(user, record))
    raise ValueError(f"unknown rule {rule!r}")  # pragma: no cover - checked at class creation


def collection_may_be_readable(rule: Rule, user: UserLike | None) -> bool:
    """Whether some record of a collection with this read rule could be readable by `user`.

    Used where no record is at hand: subscribing to a whole collection, listing it.
    """
    return rule_could_pass(rule, user)


def rule_could_pass(rule: Rule, user: UserLike | None) -> bool:
    """Whether `user` could pass `rule` for some record: the check made before there is
    a record to ask about (listing, subscribing, reading a body to create one)."""
    if rule == "public":
        return True
    if user is None:
        return False
    if rule == "admin":
        return bool(user.is_admin)
    return rule != "nobody"
