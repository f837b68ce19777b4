"""One filter language for lists (and, later, snapshots and live subscriptions).

    compiled = compile_filter("title ~ 'tea' && done = false", Task, user)
    Task.select().where(compiled.where())       # in the database
    compiled.matches(record.__data__)           # in Python: the same answer

`parse` makes the tree, `bind` checks it against a model and a reader, `sql` and
`evaluate` turn it into a Peewee expression and a Python function that agree
(docs/api.md, "Filters", gives the language and its rules).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import peewee

from ..rules import UserLike
from .bind import Bound, bind_filter
from .errors import FilterError
from .evaluate import Predicate, compile_predicate
from .limits import FilterLimits
from .parse import parse_filter
from .sql import filter_sql, is_postgresql

__all__ = ["CompiledFilter", "FilterError", "FilterLimits", "compile_filter", "parse_filter"]


@dataclass(frozen=True, slots=True)
class CompiledFilter:
    """A filter bound to one model and one reader, ready for SQL and for Python."""

    model: type[peewee.Model]
    bound: Bound
    predicate: Predicate = field(repr=False)

    def where(self) -> Any:
        """The Peewee expression, for the database the model is bound to now."""
        return filter_sql(self.bound, postgresql=is_postgresql(self.model._meta.database))

    def matches(self, values: Mapping[str, Any]) -> bool:
        """Whether a record with these values (field name → Python value) passes."""
        return self.predicate(values)


def compile_filter(
    text: str,
    model: type[peewee.Model],
    user: UserLike | None,
    limits: FilterLimits | None = None,
) -> CompiledFilter:
    """`text` parsed and bound for `model` as `user` reads it, or FilterError."""
    bound = bind_filter(parse_filter(text, limits), model, user)
    return CompiledFilter(model, bound, compile_predicate(bound))
