"""The records API: `/api/collections/<c>/records[/<id>]`, with the rules enforced.

A record a user may not read is reported as not found (its existence is not revealed);
a collection a user may not read at all is 401 for a visitor and 403 for a user.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import peewee
from quart import Blueprint, Response, current_app, jsonify, request

from .auth import current_user
from .base_model import BaseModel, collection
from .constraint_errors import own_message, violation_answer, violation_of
from .errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited, Unauthorized
from .expand import ExpandError, Expansion, expanded, parse_expand, read_related, split_expand
from .fields import coerce_field_value, missing_required, parse_record_id
from .proxies import request_client
from .query import FilterError, FilterLimits, compile_filter
from .ratelimit import LocalLimit, RateLimit
from .requests import read_body
from .users import User
from .validation import acting_as

__all__ = ["api_blueprint"]

api_blueprint = Blueprint("api", __name__, url_prefix="/api")


@api_blueprint.before_request
async def _costed() -> None:
    """Every request to the records API counts against `api.rate_limit`: a user's (a
    visitor's, by client address); past it, 429 with Retry-After, nothing done."""
    limit: LocalLimit | RateLimit | None = current_app.extensions["runtime"].api_limit
    if limit is None:
        return
    user = current_user()
    key = f"user:{user.id}" if user is not None else f"address:{request_client().address}"
    # In a thread when the counts are in Redis: its client is synchronous.
    if isinstance(limit, LocalLimit):
        wait = limit.take(key)
    else:
        wait = await asyncio.to_thread(limit.take, key)
    if wait:
        raise RateLimited("Too many requests; try again later.", retry_after=wait)


def _model(name: str) -> type[BaseModel]:
    model = collection(name)
    if model is None or not current_app.extensions["runtime"].serves(model):
        raise NotFound(f"No collection named {name[:64]!r}.")
    return model


def _denied(user: User | None, message: str) -> Exception:
    return Unauthorized() if user is None else Forbidden(message)


def _get_record(model: type[BaseModel], record_id: str, user: User | None) -> BaseModel:
    record: BaseModel | None = model.get_or_none(
        model._meta.primary_key == parse_record_id(model, record_id)
    )
    if record is None or not record.readable_by(user):
        raise NotFound("No such record.")
    return record


# ASCII digits only: str.isdigit() also takes "²" and "٣", which int() refuses or reads.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,12}")


def _int_arg(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _WHOLE_NUMBER.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise BadRequest(f"{name} must be a whole number from {minimum} to {maximum}.")
    return int(raw)


def _order(model: type[BaseModel], user: User | None) -> Any:
    raw = request.args.get("sort", "")
    if not raw:
        return model._meta.primary_key.asc()
    descending = raw.startswith("-")
    name = raw[1:] if descending else raw
    if name not in model.visible_fields(user):
        raise BadRequest(f"Cannot sort by {name[:64]!r}.")
    field = model._meta.fields[name]
    return field.desc() if descending else field.asc()


def _filter(model: type[BaseModel], user: User | None, text: str) -> Any:
    bounds = current_app.extensions["runtime"].config.query
    limits = FilterLimits(bounds.max_length, bounds.max_depth, bounds.max_terms)
    try:
        return compile_filter(text, model, user, limits).where()
    except FilterError as exc:
        raise BadRequest(
            f"Bad filter at position {exc.position}: {exc.message}.",
            reason="filter",
            position=exc.position,
        ) from None


def _expansion(model: type[BaseModel], user: User | None) -> Expansion | None:
    """The request's `expand=` checked (one or several, comma-separated), or a 400 naming
    the refused field: unknown, hidden and non-foreign-key alike."""
    names = [name for raw in request.args.getlist("expand") for name in split_expand(raw)]
    limit = current_app.extensions["runtime"].config.query.max_expand
    try:
        return parse_expand(names, model, user, limit)
    except ExpandError as exc:
        raise BadRequest(
            f"Cannot expand: {exc.message}.", reason="expand", field=exc.field
        ) from None


def _with_expand(
    items: list[dict[str, Any] | None],
    rows: list[BaseModel],
    expansion: Expansion | None,
    user: User | None,
) -> None:
    """Each item's `expand`, read with one query per related model for the whole page."""
    if expansion is None:
        return
    related = read_related(expansion, (row.__data__ for row in rows))
    shapes: dict[tuple[str, Any], dict[str, Any] | None] = {}
    for item, row in zip(items, rows, strict=True):
        if item is not None:
            item["expand"] = expanded(expansion, row.__data__, related, user, shapes)


def _writable_values(model: type[BaseModel], body: dict[str, Any]) -> dict[str, Any]:
    """Check and convert the client's fields; some fields are never the client's to set."""
    fields, protected = model._meta.fields, _protected(model)
    values: dict[str, Any] = {}
    for name, raw in body.items():
        if name not in fields or name in protected:
            raise BadRequest(f"Field {name[:64]!r} cannot be set.")
        values[name] = coerce_field_value(fields[name], raw)
    return values


def _protected(model: type[BaseModel]) -> set[str | None]:
    return {model._meta.primary_key.name, model.owner_field, *model.hidden, *model.read_only}


@api_blueprint.get("/collections/<name>/records")
async def list_records(name: str) -> Response:
    model, user = _model(name), current_user()
    if not model.collection_readable_by(user):
        raise _denied(user, "You may not read this collection.")
    config = current_app.extensions["runtime"].config.api
    page = _int_arg("page", 1, 1, 10**9)
    per_page = _int_arg("per_page", config.page_size, 1, config.max_page_size)
    query = model.readable_query(user).order_by(_order(model, user))
    expansion = _expansion(model, user)
    text = request.args.get("filter", "")
    if text.strip():  # in the database, within what the read rule lets the user see
        query = query.where(_filter(model, user, text))
    if callable(model.read_rule):  # only Python can apply a function rule
        visible = [r for r in query if r.readable_by(user)]
        total, rows = len(visible), visible[(page - 1) * per_page : page * per_page]
    else:
        total, rows = query.count(), list(query.paginate(page, per_page))
    items = [record.visible_to(user) for record in rows]
    _with_expand(items, rows, expansion, user)
    return jsonify(
        {
            "items": items,
            "page": page,
            "per_page": per_page,
            "total_items": total,
            "total_pages": math.ceil(total / per_page),
        }
    )


@api_blueprint.post("/collections/<name>/records")
async def create_record(name: str) -> tuple[Response, int]:
    model, user = _model(name), current_user()
    if not model.collection_creatable_by(user):
        raise _denied(user, "You may not create records in this collection.")
    values = _writable_values(model, await read_body())
    if model.owner_field is not None and user is not None:
        values[model.owner_field] = user.id
    # Only those the client could have sent: a hidden one is the app's to set (or the
    # database's to refuse, without naming it).
    missing = [name for name in missing_required(model, values) if name not in _protected(model)]
    if missing:
        where = {"field": missing[0]} if len(missing) == 1 else {"fields": missing}
        message = f"Missing required fields: {', '.join(missing)}."
        raise BadRequest(message, reason="not_null", **where)
    record = model(**values)
    if not record.creatable_by(user):
        raise _denied(user, "You may not create this record.")
    _save(record, user, force_insert=True)
    return jsonify(record.visible_to(user) or {"id": record.record_id}), 201


@api_blueprint.get("/collections/<name>/records/<record_id>")
async def get_record(name: str, record_id: str) -> Response:
    model, user = _model(name), current_user()
    if not model.collection_readable_by(user):
        raise _denied(user, "You may not read this collection.")
    expansion = _expansion(model, user)
    record = _get_record(model, record_id, user)
    item = record.visible_to(user)
    _with_expand([item], [record], expansion, user)
    return jsonify(item)


@api_blueprint.patch("/collections/<name>/records/<record_id>")
async def update_record(name: str, record_id: str) -> Response:
    model, user = _model(name), current_user()
    body = await read_body()
    record = _get_record(model, record_id, user)
    if not record.updatable_by(user):
        raise _denied(user, "You may not change this record.")
    for field, value in _writable_values(model, body).items():
        setattr(record, field, value)
    if not record.updatable_by(user):  # a function rule may look at the new values
        raise Forbidden("You may not make this change.")
    _save(record, user)
    return jsonify(record.visible_to(user) or {"id": record.record_id})


@api_blueprint.delete("/collections/<name>/records/<record_id>")
async def delete_record(name: str, record_id: str) -> Response:
    model, user = _model(name), current_user()
    record = _get_record(model, record_id, user)
    if not record.deletable_by(user):
        raise _denied(user, "You may not delete this record.")
    try:
        with record._meta.database.atomic():
            record.delete_instance()
    except peewee.IntegrityError as exc:
        if _is_foreign_key_violation(exc):  # another record points at this one
            raise Conflict(
                "The record is still referenced by other records.", reason="referenced"
            ) from None
        raise
    return Response(status=204)


def _save(record: BaseModel, user: User | None, *, force_insert: bool = False) -> None:
    """Save, with the model's `validate()` run for `user` first (in `save()`); what the
    database refuses is the client's answer naming the field (runtime.constraint_errors)."""
    model = type(record)
    try:
        with acting_as(user):
            record.save(force_insert=force_insert)  # in a transaction of its own
    except peewee.IntegrityError as exc:
        violation = violation_of(exc, model)
        if violation.kind == "foreign_key":
            raise _missing_reference(record) or violation_answer(violation, model) from None
        raise violation_answer(violation, model) from None
    except peewee.DataError:  # PostgreSQL: an INTEGER past 32 bits, a NUL in text
        # A foreign key past 32 bits names no record: the same 409 as on SQLite.
        raise _missing_reference(record) or BadRequest(
            "A value does not fit its field in the database."
        ) from None


def _is_foreign_key_violation(exc: peewee.IntegrityError) -> bool:
    # SQLite: "FOREIGN KEY constraint failed"; PostgreSQL: "... violates foreign key
    # constraint ..." (SQLSTATE 23503).
    return "foreign key" in str(exc).lower()


def _missing_reference(record: BaseModel) -> Conflict | None:
    """The 409 naming a foreign key of `record` that points at no record, if one does.
    SQLite does not say which foreign key failed, so each is looked up (on PostgreSQL
    too: the same answer on both)."""
    for field in type(record)._meta.refs:
        value = record.__data__.get(field.name)
        if value is None:
            continue
        target = field.rel_model
        if not target.select().where(field.rel_field == value).exists():
            own = own_message(type(record), "missing_reference", (field.name,))
            if field.name in type(record).hidden:  # never named
                message = own or "The record names a record that does not exist."
                return Conflict(message, reason="missing_reference")
            return Conflict(
                own or f"Field {field.name!r} names a record that does not exist.",
                reason="missing_reference",
                field=field.name,
            )
    return None
