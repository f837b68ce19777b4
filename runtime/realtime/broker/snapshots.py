"""Snapshots: the records a subscriber may see now, and the position they stand at.

They are read while no commit of this process can complete (`commits_held`, see
runtime/change_tracking.py), and their position is that of the last change announced
before: the live events after it are exactly those the snapshot does not show. A
snapshot shows records as the subscriber may see them (the read rule on each record,
its visible fields, its filter), in an order of a field they can see, bounded in
records, rows read and characters. A filter expression runs in the database, within
the read rule's query, as the records API's `?filter=` does; an equality object is
tested on each record as the reader sees it. With `expand`, the related records of the
records shown are read with one query per related model and carried as the records API
carries them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...base_model import BaseModel
from ...expand import Expansion, expanded, read_related
from ...query import CompiledFilter
from .. import protocol
from ..fanout.access import rule_name
from ..fanout.registry import Filter, filter_matches
from ..patterns import Pattern, PatternKind
from ..protocol import ErrorCode, ProtocolError, RequestId, Subscribe
from ..publishing.backends import Position
from ..stats import Faults

__all__ = ["SCAN_FACTOR", "Snapshots", "Wanted"]

# A snapshot reads at most this many rows per record it may return (rows the reader may
# not see, or that the filter drops, are read and skipped): its work is bounded.
SCAN_FACTOR = 10


@dataclass(frozen=True, slots=True)
class Wanted:
    """One subscription's snapshot, as asked for."""

    model: type[BaseModel]
    command: Subscribe
    order: list[Any]  # ORDER BY
    sort: str  # the order as the reply says it
    filter: Filter = None  # the command's, an expression compiled
    expand: Expansion | None = None


class Snapshots:
    def __init__(
        self, *, limit: int, faults: Faults, position: Callable[[], asyncio.Future[Position]]
    ) -> None:
        self._limit = limit
        self._faults = faults
        # Where everything announced so far will stand once it is published: asked for
        # while the commits are held (a future, not a coroutine, which would ask later).
        self._position = position

    def wanted(
        self,
        model: type[BaseModel],
        user: Any,
        command: Subscribe,
        filter: Filter = None,
        expand: Expansion | None = None,
    ) -> Wanted:
        """What a subscription's snapshot reads, or `bad_request` for a field to sort by
        that `user` cannot see."""
        order, sort = snapshot_order(model, user, command.sort, command.request_id)
        return Wanted(model, command, order, sort, filter, expand)

    async def take(
        self, user: Any, wanted: Sequence[Wanted], budget: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Each wanted snapshot's body, in order, and what is left of the budget (in
        characters) that they share. ReadsBlocked if a table they read is locked."""
        bodies: list[dict[str, Any]] = []
        with _commits_held(item.model for item in wanted):
            for item in wanted:
                command = item.command
                records, complete, used = snapshot_records(
                    item.model,
                    user,
                    command.pattern,
                    item.filter,
                    order=item.order,
                    limit=min(command.limit or self._limit, self._limit),
                    max_chars=budget,
                    faults=self._faults,
                    expand=item.expand,
                )
                budget -= used
                key = item.model._meta.primary_key.name  # how records name their id
                bodies.append({"records": records, "complete": complete, "key": key})
            mark = self._position()
        position = await mark
        for item, body in zip(wanted, bodies, strict=True):
            body.update(position=position.id, sort=item.sort, seq=position.offset)
        return bodies, budget


def _commits_held(models: Iterable[type[BaseModel]]) -> contextlib.ExitStack:
    """Hold the commits of every database the models use (see runtime.db), and bound
    the reads made meanwhile (ReadsBlocked rather than a deadlock)."""
    stack = contextlib.ExitStack()
    databases = {model._meta.database for model in models}
    for database in databases:
        hold = getattr(database, "commits_held", None)
        if hold is not None:
            stack.enter_context(hold())
    for database in databases:
        bound = getattr(database, "reads_while_held", None)
        if bound is not None:
            stack.enter_context(bound())
    return stack


def snapshot_records(
    model: type[BaseModel],
    user: Any,
    pattern: Pattern,
    filter: Filter,
    *,
    order: list[Any],
    limit: int,
    max_chars: int,
    faults: Faults,
    expand: Expansion | None = None,
    kept: Callable[[BaseModel], None] | None = None,
) -> tuple[list[dict[str, Any]], bool, int]:
    """The records `user` may see now, as they see them, in `order`; whether that was
    all of them; and the characters they take encoded. At most `limit` records and
    `max_chars` characters, reading at most SCAN_FACTOR rows per record returned."""
    if expand is not None:
        return _expanded_records(
            model, user, pattern, filter, order, limit, max_chars, faults, expand
        )
    query = model.readable_query(user)
    if pattern.kind is PatternKind.RECORD:
        query = query.where(model._meta.primary_key == pattern.record_id)
    if isinstance(filter, CompiledFilter):  # in the database: no rows read to be skipped
        query, filter = query.where(filter.where()), None
    scan_limit = limit * SCAN_FACTOR
    records: list[dict[str, Any]] = []
    used = 0
    for scanned, record in enumerate(query.order_by(*order).limit(scan_limit + 1).iterator()):
        if scanned == scan_limit or len(records) == limit:
            return records, False, used
        try:
            visible = record.visible_to(user)
        except Exception as error:
            faults.record(model.collection_name(), "read rule", rule_name(model.read_rule), error)
            continue
        if visible is None or not filter_matches(filter, visible):
            continue
        size = len(protocol.encode(visible)) + 1
        if used + size > max_chars:
            return records, False, used
        records.append(visible)
        used += size
        if kept is not None:  # the row a record was made from (for its expand)
            kept(record)
    return records, True, used


def _expanded_records(
    model: type[BaseModel],
    user: Any,
    pattern: Pattern,
    filter: Filter,
    order: list[Any],
    limit: int,
    max_chars: int,
    faults: Faults,
    expand: Expansion,
) -> tuple[list[dict[str, Any]], bool, int]:
    """As snapshot_records, each record with its `expand`: the records are chosen first
    (without a character bound), their related records read in one query per related
    model, then the character bound applies to the records as sent."""
    rows: list[BaseModel] = []

    def keep(record: BaseModel) -> None:
        rows.append(record)

    chosen, complete, _ = snapshot_records(
        model,
        user,
        pattern,
        filter,
        order=order,
        limit=limit,
        max_chars=2**62,
        faults=faults,
        kept=keep,
    )
    related = read_related(expand, (row.__data__ for row in rows))
    shapes: dict[tuple[str, Any], dict[str, Any] | None] = {}
    records: list[dict[str, Any]] = []
    used = 0
    for visible, row in zip(chosen, rows, strict=True):
        visible["expand"] = expanded(expand, row.__data__, related, user, shapes)
        size = len(protocol.encode(visible)) + 1
        if used + size > max_chars:
            return records, False, used
        records.append(visible)
        used += size
    return records, complete, used


def snapshot_order(
    model: type[BaseModel], user: Any, sort: str | None, request_id: RequestId
) -> tuple[list[Any], str]:
    """ORDER BY for a snapshot, and the order as text for the reply: the requested field
    (one the user can see), newest first by default; the primary key breaks ties."""
    pk = model._meta.primary_key
    sort = sort or f"-{pk.name}"
    name, descending = sort.lstrip("-"), sort.startswith("-")
    if name not in model.visible_fields(user):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"cannot sort a snapshot by {name!r}", request_id
        )
    field = model._meta.fields[name]
    tiebreak = pk.desc() if descending else pk.asc()
    if field is pk:
        return [tiebreak], sort
    return [field.desc() if descending else field.asc(), tiebreak], sort
