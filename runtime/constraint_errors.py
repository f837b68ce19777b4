"""What the database refused, said as an answer: a unique, not-null, check or foreign-key
violation becomes the `ApiError` naming the field, the same on SQLite and PostgreSQL.

SQLite names `table.column` for UNIQUE and NOT NULL, and a CHECK's name or expression;
PostgreSQL gives an SQLSTATE and the constraint's name (or the column, for NOT NULL),
which are mapped back to the model's fields through its indexes and field constraints.
A hidden field is never named; a model's `messages` words its own answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import peewee

from .adapters.peewee import check_parts, index_parts
from .db import postgresql_error
from .errors import ApiError, BadRequest, Conflict
from .registry import collection, collections

__all__ = [
    "MESSAGE_REASONS",
    "Violation",
    "check_constraints",
    "refuse_bad_messages",
    "unique_indexes",
    "violation_answer",
    "violation_of",
]

# The reasons a model's `messages` may word (`referenced` is about another record).
MESSAGE_REASONS = ("unique", "not_null", "check", "missing_reference")

_SQLSTATES = {"23505": "unique", "23502": "not_null", "23514": "check", "23503": "foreign_key"}
_SQLITE = re.compile(r"(UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed(?:: (.*))?", re.S)
_SQLITE_KINDS = {"UNIQUE": "unique", "NOT NULL": "not_null", "CHECK": "check"}
_PG_NAME_LENGTH = 63  # PostgreSQL truncates identifiers to this many bytes


@dataclass(frozen=True, slots=True)
class Violation:
    """One refused write: its kind, the table if known, and the fields (or a check's
    name) it is about."""

    kind: str  # unique, not_null, check, foreign_key, or "" when unknown
    table: str | None = None
    fields: tuple[str, ...] = ()
    constraint: str | None = None  # a check without a field: its name


def violation_of(exc: peewee.IntegrityError, model: type[peewee.Model] | None) -> Violation:
    """What `exc` says, in terms of `model` (or of the model its table names)."""
    found = postgresql_error(exc)
    if found is not None and found[1] is not None:
        return _postgresql_violation(*found, model)
    match = _SQLITE.search(str(exc))
    if match is None:
        return Violation("")
    kind, detail = match.group(1), (match.group(2) or "").strip()
    if kind == "FOREIGN KEY":
        return Violation("foreign_key", _table(model))
    if kind == "CHECK":
        return _check_violation(detail, model, sqlite=True)
    columns = [part.strip().rpartition(".") for part in detail.split(",")]
    table = columns[0][0] if columns and columns[0][0] else _table(model)
    model = model or _model_of(table)
    return Violation(_SQLITE_KINDS[kind], table, _field_names(model, [c for _, _, c in columns]))


def violation_answer(violation: Violation, model: type[peewee.Model] | None) -> ApiError:
    """The client's answer to `violation` (for a foreign key that names no record, the
    caller may say which one: SQLite does not)."""
    if model is None and violation.table is not None:
        model = _model_of(violation.table)
    kind, fields = violation.kind, violation.fields
    if kind == "foreign_key":
        message = "The record names a record that does not exist."
        return Conflict(message, reason="missing_reference")
    if kind not in ("unique", "not_null", "check"):
        return BadRequest("The record violates a constraint.")
    hidden = set(getattr(model, "hidden", ()))
    named = fields if fields and not hidden.intersection(fields) else ()
    where: dict[str, Any] = {}
    if named:
        where = {"field": named[0]} if len(named) == 1 else {"fields": list(named)}
    custom = own_message(model, kind, fields or (violation.constraint or "",))
    message = custom or _default_message(kind, named)
    error = Conflict if kind == "unique" else BadRequest
    return error(message, reason=kind, **where)


def _default_message(kind: str, named: tuple[str, ...]) -> str:
    quoted = ", ".join(repr(name) for name in named)
    if kind == "unique":
        if not named:
            return "A record with that value already exists."
        values = "those values" if len(named) > 1 else "that value"
        return f"A record with {values} of {quoted} already exists."
    if kind == "not_null":
        return f"Field {quoted} may not be null." if named else "A required field is missing."
    return (
        f"Field {quoted} has a value it may not have."
        if named
        else "The record violates a constraint."
    )


def own_message(model: Any, reason: str, key: tuple[str, ...]) -> str | None:
    """The model's own wording, from `messages[reason]` by field name, tuple of field
    names (a multi-column unique index) or check constraint name."""
    if model is None:
        return None
    wordings = getattr(model, "messages", {}).get(reason, {})
    found = wordings.get(key[0] if len(key) == 1 else key)
    return found if isinstance(found, str) else None


# -- the model's constraints, by the names the databases give them -------------------


def unique_indexes(model: type[peewee.Model]) -> dict[str, tuple[str, ...]]:
    """Each unique index's name (and the primary key's, as PostgreSQL names it) -> its
    fields' names."""
    meta = model._meta
    pk = meta.primary_key
    keys = tuple(pk.field_names) if isinstance(pk, peewee.CompositeKey) else (pk.name,)
    found = {f"{meta.table_name}_pkey": keys}
    for index in meta.fields_to_index():
        if not isinstance(index, peewee.Index):
            continue
        index_name, expressions, unique = index_parts(index)
        names = tuple(e.name for e in expressions if isinstance(e, peewee.Field))
        if unique and names:
            found[index_name] = names
    return found


def check_constraints(model: type[peewee.Model]) -> list[tuple[str | None, str, str | None]]:
    """Each CHECK of the model as (name or None, expression, field name or None): those
    given to a field (`constraints=[Check(...)]`) are that field's; those of
    `Meta.constraints` are the table's."""
    found: list[tuple[str | None, str, str | None]] = []
    for field in model._meta.sorted_fields:
        for node in field.constraints or ():
            check = check_parts(node)
            if check is not None:
                found.append((*check, field.name))
    for node in model._meta.constraints or ():
        check = check_parts(node)
        if check is not None:
            found.append((*check, None))
    return found


def _check_violation(detail: str, model: type[peewee.Model] | None, *, sqlite: bool) -> Violation:
    """A check by its SQLite detail (its name, or its expression when it has none) or
    its PostgreSQL name."""
    for candidate in [model] if model is not None else _all_models():
        table = str(candidate._meta.table_name)
        for name, expression, field in check_constraints(candidate):
            if _is_this_check(detail, table, name, expression, field, sqlite=sqlite):
                return Violation("check", table, (field,) if field else (), name)
    return Violation("check", _table(model), (), None)


def _is_this_check(
    detail: str, table: str, name: str | None, expression: str, field: str | None, *, sqlite: bool
) -> bool:
    if name is not None:
        return detail in (name, name[:_PG_NAME_LENGTH])
    if sqlite:
        return detail == expression
    if field is None:
        return False
    # PostgreSQL names an unnamed column check <table>_<column>_check, then _check1, ...
    base = re.escape(f"{table}_{field}_check"[:_PG_NAME_LENGTH])
    return re.fullmatch(f"{base}[0-9]*", detail) is not None


# -- PostgreSQL ----------------------------------------------------------------------


def _postgresql_violation(code: str, diag: Any, model: type[peewee.Model] | None) -> Violation:
    kind = _SQLSTATES.get(code, "")
    table = diag.table_name or _table(model)
    if model is None and table is not None:
        model = _model_of(table)
    if kind == "not_null":
        return Violation(kind, table, _field_names(model, [diag.column_name or ""]))
    if kind == "unique" and model is not None:
        name = diag.constraint_name or ""
        for index, fields in unique_indexes(model).items():
            if name in (index, index[:_PG_NAME_LENGTH]):
                return Violation(kind, table, fields)
        return Violation(kind, table)
    if kind == "check":
        return _check_violation(diag.constraint_name or "", model, sqlite=False)
    return Violation(kind, table)


# -- helpers ------------------------------------------------------------------------


def _field_names(model: type[peewee.Model] | None, columns: list[str]) -> tuple[str, ...]:
    """The fields of these columns; () if one is not the model's."""
    if model is None:
        return ()
    by_column = {f.column_name: f.name for f in model._meta.sorted_fields}
    if not all(c in by_column for c in columns):
        return ()
    return tuple(by_column[c] for c in columns)


def _table(model: type[peewee.Model] | None) -> str | None:
    return None if model is None else str(model._meta.table_name)


def _all_models() -> list[type[peewee.Model]]:
    return list(collections().values())


def _model_of(table: str | None) -> type[peewee.Model] | None:
    return collection(table) if table else None


def refuse_bad_messages(model: type[peewee.Model], name: str) -> None:
    """`messages` as a model declares it: {reason: {key: text}}, each key a field, or
    for `unique` a tuple of a unique index's fields, or for `check` a check's name;
    else a TypeError naming the class and the attribute."""
    messages = getattr(model, "messages", {})
    if not isinstance(messages, dict):
        raise TypeError(f"{name}.messages: a dict of reason -> {{field: message}}")
    fields = set(model._meta.fields)
    for reason, wordings in messages.items():
        if reason not in MESSAGE_REASONS:
            raise TypeError(f"{name}.messages: {reason!r} is not one of {MESSAGE_REASONS}")
        if not isinstance(wordings, dict):
            raise TypeError(f"{name}.messages[{reason!r}]: a dict of field -> message")
        known = set(fields)
        if reason == "unique":
            known.update(unique_indexes(model).values())
        if reason == "check":
            known.update(n for n, _, _ in check_constraints(model) if n is not None)
        for key, text in wordings.items():
            if key not in known:
                raise TypeError(f"{name}.messages[{reason!r}] names an unknown field: {key!r}")
            if not isinstance(text, str) or not text:
                raise TypeError(f"{name}.messages[{reason!r}][{key!r}]: a message (a str)")
