"""Presence: who is here now on a topic (a channel or a collection) that tracks it.

A logged-in user is here while at least one of their connections is subscribed to the
topic by its name (`lobby`, not `*`): their first tab's subscribe publishes one `join`,
their last tab's unsubscribe or disconnect one `leave`. Visitors are not listed.

Two ledgers: the connections of this process, per user, decide when to join and leave;
and who is here, as the published join and leave events say, which is the list a new
subscriber gets. Built from the events in their order, that list stands exactly where
the subscriber's live events begin: everyone in it joined before, every later change is
an event after.

With a backend several processes share, this process's connections decide only whether
it has the user on the topic: `changed` tells the shared ledger (broker/sharing.py),
which publishes the join or leave when it is the user's first or last process anywhere.
Who is here is still built from the events, from a list the backend reads with the
position where reading starts (`reset`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from ...json_values import json_tree
from ..events import Event, public_user
from ..patterns import Pattern, PatternKind

if TYPE_CHECKING:
    from ..connections.connection import Connection

__all__ = ["PRESENCE_ACTIONS", "Presence"]

PRESENCE_ACTIONS = ("join", "leave")


class Presence:
    def __init__(self, topics: Collection[str], publish: Callable[[Event], None]) -> None:
        self._topics = topics  # the names that track presence (the app's, read live)
        self._publish = publish  # a join or leave, after everything published before
        self._local: dict[str, dict[Any, int]] = {}  # topic -> user id -> connections
        self._users: dict[str, dict[Any, Any]] = {}  # topic -> user id -> user, if shared
        self._here: dict[str, dict[Any, dict[str, Any]]] = {}  # topic -> user id -> user
        # Shared: (topic, user id, public user) whose first or last connection here
        # this was; the shared ledger publishes the join or leave, if any.
        self.changed: Callable[[str, Any, Any], None] | None = None

    def topic_of(self, pattern: Pattern) -> str | None:
        """The topic whose presence a subscription to `pattern` counts in, if any: its
        name, not a wildcard or one record."""
        if pattern.kind is PatternKind.COLLECTION and pattern.collection in self._topics:
            return pattern.collection
        return None

    # -- this process's connections -------------------------------------------------

    def join(self, conn: Connection, pattern: Pattern) -> None:
        """`conn` subscribed to `pattern`: it counts in that topic's presence, if any."""
        topic = self.topic_of(pattern)
        present = conn.present if conn.present is not None else set()
        if topic is None or topic in present:
            return  # no presence here, or a subscription again to the same topic
        conn.present = present
        present.add(topic)
        if conn.user is None:
            return  # visitors are not listed
        counts = self._local.setdefault(topic, {})
        counts[conn.user.id] = counts.get(conn.user.id, 0) + 1
        if counts[conn.user.id] == 1:
            user = json_tree(public_user(conn.user))
            if self.changed is None:
                self._publish(Event("join", topic, user=user))
                return
            self._users.setdefault(topic, {})[conn.user.id] = user
            self.changed(topic, conn.user.id, user)

    def leave(self, conn: Connection, pattern: Pattern) -> None:
        """`conn` unsubscribed from `pattern`."""
        topic = self.topic_of(pattern)
        if topic is not None:
            self._depart(conn, topic)

    def leave_everywhere(self, conn: Connection) -> None:
        """`conn` is gone."""
        for topic in list(conn.present or ()):
            self._depart(conn, topic)

    def _depart(self, conn: Connection, topic: str) -> None:
        if conn.present is None or topic not in conn.present:
            return
        conn.present.discard(topic)
        if conn.user is None:
            return
        counts = self._local.get(topic, {})
        left = counts.get(conn.user.id, 0) - 1
        if left > 0:
            counts[conn.user.id] = left
            return
        counts.pop(conn.user.id, None)
        if not counts:
            self._local.pop(topic, None)
        if self.changed is None:
            self._publish(Event("leave", topic, user=json_tree(public_user(conn.user))))
            return
        users = self._users.get(topic, {})
        user = users.pop(conn.user.id, None)
        if not users:
            self._users.pop(topic, None)
        self.changed(topic, conn.user.id, user)

    def user_here(self, topic: str, user_id: Any) -> Any:
        """Shared: the public user, if this process has `user_id` on `topic`; else None."""
        return self._users.get(topic, {}).get(user_id)

    def users_here(self) -> list[tuple[str, Any, Any]]:
        """Shared: (topic, user id, public user) of every user this process has."""
        return [(t, uid, user) for t, users in self._users.items() for uid, user in users.items()]

    # -- who is here, as published ----------------------------------------------------

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

    def reset(self, joins: list[Event]) -> None:
        """Who is here is what these joins say (read from a shared backend, as of where
        its events are delivered from next)."""
        self._here = {}
        for join in joins:
            self.apply(join)

    def who(self, topic: str) -> list[dict[str, Any]]:
        return list(self._here.get(topic, {}).values())
