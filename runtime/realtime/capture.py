"""Capture, the pipeline's first stage: committed record changes become events.

`runtime.db` announces each transaction's changes to the receivers of `on_commit`, on
the committing thread and under the commit lock, once they have committed (see
runtime/change_tracking.py). Queueing their events right there, in that order, is what
makes events leave in commit order (see publishing/publisher.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from .events import Event, record_event

if TYPE_CHECKING:
    from ..base_model import BaseModel
    from ..db import RecordChange

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
            event = record_event(change, name, model.hidden)
            if event is not None:
                events.append(event)
        if events:
            self._publish(events)
