"""Committed record changes become events, handed to the publisher at once.

`runtime.db` announces each transaction's changes to the receivers of `on_commit`, on
the committing thread and under the commit lock, once they have committed (see
runtime/change_tracking.py). Queueing their events right there, in that order, is what
makes events leave in commit order (see publishing/publisher.py).

A database with an outbox (outbox.py) has written its changes' events as rows in the
committing transaction: the relay publishes those, so they are skipped here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..events import Event, record_event
from .outbox import has_outbox

if TYPE_CHECKING:
    from ...base_model import BaseModel
    from ...db import RecordChange

__all__ = ["ChangeCapture"]


class ChangeCapture:
    """A receiver of `on_commit`: the changes of the collections served, as events
    handed to `publish` (never waiting: it runs under the commit lock)."""

    def __init__(
        self,
        served: Callable[[], Mapping[str, type[BaseModel]]],
        publish: Callable[[Sequence[Event]], None],
    ) -> None:
        self._served = served
        self._publish = publish

    def __call__(self, changes: list[RecordChange]) -> None:
        served = self._served()
        events: list[Event] = []
        for change in changes:
            model = change.model
            name = model.collection_name()
            if served.get(name) is not model:
                continue  # a model of another app, or not a collection at all
            if has_outbox(model):
                continue  # written as an outbox row in its transaction: the relay's
            event = record_event(change, name, model.left_out_of_events())
            if event is not None:
                events.append(event)
        if events:
            self._publish(events)
