"""Related records read with the records that point to them: `expand=author`.

    expansion = parse_expand("author", Message, user, limit=8)   # or ExpandError
    related = read_related(expansion, [row.__data__ for row in rows])  # one query a model
    item["expand"] = expanded(expansion, row.__data__, related, user)

A name is a foreign key of the model that the reader sees (`visible_fields(user)`); an
unknown, hidden or non-foreign-key name is refused alike, so `expand` cannot probe what
a reader may not see. One level only. Each related record is shown as its own model's
rules let the reader see it (read rule, visible fields); one they may not read, or a
null or dangling key, is absent. A key to the runtime's `User` shows the user's public
fields (`public_dict()`: id, username, is_admin), as presence shows a user: `users`
themselves are readable only by their owner and admins, which would make an author
unreadable to everyone else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import peewee

from .rules import UserLike

__all__ = [
    "ExpandError",
    "Expansion",
    "Related",
    "expanded",
    "parse_expand",
    "read_related",
    "related_shape",
    "shows_public",
    "split_expand",
]

# What the names of one `expand` may be, before the model is looked at.
MAX_NAME_LENGTH = 64

# field name -> {key value -> the related record}
Related = dict[str, dict[Any, peewee.Model]]


class ExpandError(Exception):
    """An `expand` name refused: `field` names it (as given, cut to 64 characters)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field[:MAX_NAME_LENGTH]


@dataclass(frozen=True, slots=True, eq=False)  # Peewee's fields make == an expression
class Expansion:
    """The foreign keys one reader asked to expand on one model, checked."""

    fields: tuple[peewee.ForeignKeyField, ...]
    names: tuple[str, ...] = ()  # the fields' names (filled in when not given)

    def __post_init__(self) -> None:
        if not self.names:
            object.__setattr__(self, "names", tuple(field.name for field in self.fields))


def split_expand(text: str) -> list[str]:
    """`"author, project"` as names; blanks between commas are skipped."""
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_expand(
    names: Sequence[str], model: type[peewee.Model], user: UserLike | None, limit: int
) -> Expansion | None:
    """`names` checked for `model` as `user` reads it (None for none), or ExpandError."""
    unique = list(dict.fromkeys(names))
    if not unique:
        return None
    if len(unique) > limit:
        raise ExpandError(f"at most {limit} fields can be expanded", unique[limit])
    visible = set(model.visible_fields(user)) if hasattr(model, "visible_fields") else None
    fields: list[peewee.ForeignKeyField] = []
    for name in unique:
        field = model._meta.fields.get(name)
        if (
            not isinstance(field, peewee.ForeignKeyField)
            or (visible is not None and name not in visible)
            or not _expandable(field.rel_model)
        ):
            raise ExpandError(f"no foreign key {name[:MAX_NAME_LENGTH]!r} to expand", name)
        fields.append(field)
    return Expansion(tuple(fields))


def _expandable(model: type[peewee.Model]) -> bool:
    # A collection (its rules say who sees what); a plain Peewee model has no rules.
    return hasattr(model, "visible_to") and hasattr(model, "readable_by")


def read_related(expansion: Expansion, rows: Iterable[Mapping[str, Any]]) -> Related:
    """The records the rows' keys name: one `WHERE key IN (…)` per related model, however
    many rows and foreign keys (two keys to one model share its query)."""
    wanted: dict[peewee.Field, set[Any]] = defaultdict(set)  # the related key -> values
    rows = list(rows)
    for field in expansion.fields:
        values = wanted[field.rel_field]
        values.update(row[field.name] for row in rows if row.get(field.name) is not None)
    found: dict[peewee.Field, dict[Any, peewee.Model]] = {}
    for key, values in wanted.items():
        found[key] = {}
        if values:
            query = key.model.select().where(key.in_(sorted(values, key=repr)))
            found[key] = {record.__data__[key.name]: record for record in query}
    return {field.name: found[field.rel_field] for field in expansion.fields}


def related_shape(record: peewee.Model, user: UserLike | None) -> dict[str, Any] | None:
    """The related record as `user` may see it, or None if they may not read it."""
    if shows_public(record):
        shown: dict[str, Any] = record.public_dict()
        return shown
    visible: dict[str, Any] | None = record.visible_to(user)
    return visible


def shows_public(record: peewee.Model) -> bool:
    """Whether `record` is one of the runtime's users, shown by their public fields."""
    from .users import User  # users imports base_model, which this module must not need

    return isinstance(record, User)


def expanded(
    expansion: Expansion,
    values: Mapping[str, Any],
    related: Related,
    user: UserLike | None,
    shapes: dict[tuple[str, Any], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The `expand` object of one row: each name whose record `user` may read. `shapes`
    (name, key) -> shape, if given, remembers shapes across the rows of one reader."""
    out: dict[str, Any] = {}
    for field in expansion.fields:
        key = values.get(field.name)
        record = related[field.name].get(key) if key is not None else None
        if record is None:
            continue
        if shapes is None:
            shape = related_shape(record, user)
        else:
            memo = (field.name, key)
            if memo not in shapes:
                shapes[memo] = related_shape(record, user)
            shape = shapes[memo]
        if shape is not None:
            out[field.name] = shape
    return out
