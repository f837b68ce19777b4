"""Presence: who is here now on a topic (a channel or a collection) that tracks it.

A logged-in user is here while at least one of their connections is subscribed to the
topic by its name (`lobby`, not `*`): their first tab's subscribe publishes one `join`,
their last tab's unsubscribe or disconnect one `leave`. Visitors are not listed.

Two ledgers: the connections of this process, per user, decide when to join and leave;
and who is here, as the published join and leave events say, which is the list a new
subscriber gets. Built from the events in their order, that list stands exactly where
the subscriber's live events begin: everyone in it joined before, every later change is
an event after.
"""

from __future__ import annotations

from typing import Any

from ...json_values import json_tree
from ..events import Event, public_user

__all__ = ["PRESENCE_ACTIONS", "Presence"]

PRESENCE_ACTIONS = ("join", "leave")


class Presence:
    def __init__(self) -> None:
        self._local: dict[str, dict[Any, int]] = {}  # topic -> user id -> connections
        self._here: dict[str, dict[Any, dict[str, Any]]] = {}  # topic -> user id -> user

    def arrive(self, topic: str, user: Any) -> Event | None:
        """A connection of `user` subscribed to `topic`: the join to publish, if first."""
        if user is None:
            return None
        counts = self._local.setdefault(topic, {})
        counts[user.id] = counts.get(user.id, 0) + 1
        if counts[user.id] > 1:
            return None
        return Event("join", topic, user=json_tree(public_user(user)))

    def depart(self, topic: str, user: Any) -> Event | None:
        """A connection of `user` left `topic`: the leave to publish, if it was the last."""
        if user is None:
            return None
        counts = self._local.get(topic, {})
        left = counts.get(user.id, 0) - 1
        if left > 0:
            counts[user.id] = left
            return None
        counts.pop(user.id, None)
        if not counts:
            self._local.pop(topic, None)
        return Event("leave", topic, user=json_tree(public_user(user)))

    def apply(self, event: Event) -> None:
        """A join or leave was published: who is here changes."""
        assert event.collection is not None and isinstance(event.user, dict)
        here = self._here.setdefault(event.collection, {})
        if event.action == "join":
            here[event.user.get("id")] = event.user
        else:
            here.pop(event.user.get("id"), None)
            if not here:
                self._here.pop(event.collection, None)

    def who(self, topic: str) -> list[dict[str, Any]]:
        return list(self._here.get(topic, {}).values())
