"""Replay: the missed events of subscriptions resumed with `since`, for one connection.

Each resumed subscription's events are a suffix of the same history, so the longest is
walked once. An event is replayed if a resumed subscription wants it and the connection
did not already get it: through one of its other subscriptions (live since before the
event), or, for custom events without a collection, because the connection was open by
then. Access and shape are decided by `access`, as for live events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .delivery import is_target
from .expanding import wanted_expansion

if TYPE_CHECKING:
    from ..connections.connection import Connection
    from ..events import Event
    from .access import EventAccess
    from .registry import Subscription

__all__ = ["replay_frames"]


def replay_frames(
    conn: Connection,
    resumed: list[tuple[Subscription, list[Event]]],
    others: list[Subscription],
    access: Callable[[Event], EventAccess],
    budget: int,
) -> list[str] | None:
    """Frames of the missed events, in order, each once; `resumed` lists non-empty.
    None if they would take more than `budget` characters."""
    events = max((evs for _, evs in resumed), key=len)
    # A resumed subscription wants the events after the one before its first.
    new = [(evs[0].seq - 1, sub) for sub, evs in resumed]
    earliest = min(start for start, _ in new)
    expand = wanted_expansion([sub for sub, _ in resumed])  # as live events carry it
    frames: list[str] = []
    for event in events:
        if event.is_presence or event.is_control:
            continue  # the presence list in the `subscribed` reply says who is here now
        if event.is_custom and not is_target(event, conn):
            continue
        shaper = access(event)
        if event.record_id is not None and shaper.moves:  # into or out of some views
            frame = _moved(conn, event, shaper, new, others)
            wanted = frame is not None
        else:
            frame, visible = shaper.for_user(conn.user)
            if frame is None:
                continue
            if event.collection is None:  # reaches every connection: missed only before it opened
                wanted = event.seq <= conn.globals_from
            else:
                wanted = any(
                    _covers(sub, start, event, shaper, visible) for start, sub in new
                ) and not any(_covers(sub, sub.live_from, event, shaper, visible) for sub in others)
                if wanted and expand is not None:
                    frame = shaper.with_expand(conn.user, expand, visible)
        if wanted:
            assert frame is not None
            budget -= len(frame)
            if budget < 0:
                return None
            frames.append(frame)
    conn.globals_from = min(conn.globals_from, earliest)
    return frames


def _moved(
    conn: Connection,
    event: Event,
    access: EventAccess,
    new: list[tuple[int, Subscription]],
    others: list[Subscription],
) -> str | None:
    """The frame of an update that moves its record into or out of views (see
    `EventAccess.moved`), judged for the resumed subscriptions that cover it; None if
    none does, or if one of the others, live then, got it already."""
    assert event.collection is not None
    live = [sub for sub in others if _after(sub, sub.live_from, event)]
    if live and access.moved(conn.user, live)[1]:
        return None
    resumed = [sub for start, sub in new if _after(sub, start, event)]
    frame, concerned = access.moved(conn.user, resumed) if resumed else (None, [])
    return frame if concerned else None


def _after(sub: Subscription, after: int, event: Event) -> bool:
    """Whether `sub`, live after order number `after`, covers `event` (filters aside)."""
    assert event.collection is not None
    return event.seq > after and sub.pattern.matches(event.collection, event.record_id)


def _covers(
    sub: Subscription, after: int, event: Event, access: EventAccess, visible: Mapping[str, Any]
) -> bool:
    """Whether `sub`, live after order number `after`, gets `event`."""
    assert event.collection is not None
    return (
        event.seq > after
        and sub.pattern.matches(event.collection, event.record_id)
        and (event.record_id is None or sub.filter is None or access.passes(sub.filter, visible))
    )
