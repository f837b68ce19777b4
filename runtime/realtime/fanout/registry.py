"""The subscription registry: which connections want which events.

Exact topics are dictionary lookups, never scans: matching an event costs what the
subscribers it reaches cost, however many subscriptions other collections and records
have. Only glob patterns are tested one by one, and the result is remembered per
collection until the set of globs changes.

Connections are opaque hashable objects; the registry never looks inside them.
Reading rules and filters are the caller's business: :meth:`SubscriptionRegistry.match`
returns candidates with their matching subscriptions, and :func:`filter_matches` is
the filter test.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from ...json_values import json_value
from ..patterns import Pattern, PatternKey, PatternKind
from ..protocol import JSONScalar

if TYPE_CHECKING:
    from ...expand import Expansion
    from ...query import CompiledFilter

__all__ = ["Filter", "Subscription", "SubscriptionRegistry", "filter_matches", "merge_buckets"]

# A subscription's filter: an equality object, or an expression compiled for its model
# and user (judged on the event's typed values: `EventAccess.passes`); None for none.
Filter: TypeAlias = "dict[str, JSONScalar] | CompiledFilter | None"

Conn = TypeVar("Conn", bound=Hashable)
_K = TypeVar("_K", bound=Hashable)

# Past this many distinct collection names the glob cache starts over, so names made
# up by custom events cannot grow it without bound.
_GLOB_CACHE_LIMIT = 1024


@dataclass(slots=True)
class Subscription:
    """One connection's subscription to one pattern key.

    Mutable on purpose: re-subscribing updates it in place, so every index that
    holds it sees the new filter.
    """

    pattern: Pattern
    filter: Filter = None
    # The order number (`Event.seq`) after which this subscription receives events: the
    # position when it went live, or the `since` it resumed from. Replays use it to skip
    # what was delivered already.
    live_from: int = 0
    # While a subscribe is under way (reading history, taking a snapshot) its events are
    # held back, then merged with what was read: see realtime_broker.
    held: bool = False
    # The foreign keys its events carry the records of (`expand`), checked for its user.
    expand: Expansion | None = None


class SubscriptionRegistry(Generic[Conn]):
    """Subscriptions indexed by topic and by connection."""

    def __init__(self) -> None:
        self._all: dict[Conn, Subscription] = {}
        self._collections: dict[str, dict[Conn, Subscription]] = {}
        self._records: dict[tuple[str, str], dict[Conn, Subscription]] = {}
        self._globs: dict[PatternKey, tuple[Pattern, dict[Conn, Subscription]]] = {}
        # collection name -> the glob buckets matching it; cleared when globs change.
        self._glob_cache: dict[str, list[dict[Conn, Subscription]]] = {}
        # The per-connection index makes removal O(subscriptions of that connection).
        self._by_conn: dict[Conn, dict[PatternKey, Subscription]] = {}
        self._total = 0

    def add(
        self,
        conn: Conn,
        pattern: Pattern,
        filter: Filter = None,
        *,
        live_from: int = 0,
        held: bool = False,
        expand: Expansion | None = None,
    ) -> bool:
        """Subscribe; True if new, False if it replaced the filter of the same pattern."""
        own = self._by_conn.setdefault(conn, {})
        existing = own.get(pattern.key)
        if existing is not None:
            existing.pattern = pattern  # latest spelling, e.g. "posts/*" after "posts"
            existing.filter = filter
            existing.live_from = live_from
            existing.held = held
            existing.expand = expand
            return False
        subscription = Subscription(pattern, filter, live_from, held, expand)
        own[pattern.key] = subscription
        self._bucket(pattern)[conn] = subscription
        self._total += 1
        return True

    def discard(self, conn: Conn, pattern: Pattern) -> bool:
        """Unsubscribe; False if there was no such subscription."""
        own = self._by_conn.get(conn)
        if own is None or own.pop(pattern.key, None) is None:
            return False
        if not own:
            del self._by_conn[conn]
        self._unlink(conn, pattern)
        return True

    def remove_connection(self, conn: Conn) -> int:
        """Drop every subscription of ``conn``; return how many there were."""
        own = self._by_conn.pop(conn, None)
        if own is None:
            return 0
        for subscription in own.values():
            self._unlink(conn, subscription.pattern)
        return len(own)

    def get(self, conn: Conn, pattern: Pattern) -> Subscription | None:
        own = self._by_conn.get(conn)
        return None if own is None else own.get(pattern.key)

    def subscriptions_of(self, conn: Conn) -> list[Subscription]:
        own = self._by_conn.get(conn)
        return [] if own is None else list(own.values())

    def count(self, conn: Conn) -> int:
        own = self._by_conn.get(conn)
        return 0 if own is None else len(own)

    def connection_count(self) -> int:
        return len(self._by_conn)

    def is_empty(self) -> bool:
        return not self._by_conn

    def __len__(self) -> int:
        return self._total

    def buckets(
        self, collection: str, record_id: str | None = None
    ) -> list[dict[Conn, Subscription]]:
        """The non-empty buckets an event reaches (a connection may be in several).

        With ``record_id`` it is a record event on ``collection/record_id``; without, a
        collection-level (custom) event, which record subscriptions do not receive.
        """
        found = [bucket for bucket in (self._all, self._collections.get(collection)) if bucket]
        if self._globs:
            found.extend(bucket for bucket in self._glob_buckets(collection) if bucket)
        if record_id is not None:
            bucket = self._records.get((collection, record_id))
            if bucket:
                found.append(bucket)
        return found

    def match(
        self, collection: str, record_id: str | None = None
    ) -> dict[Conn, list[Subscription]]:
        """Connections interested in an event, each once, with their matching subscriptions."""
        return merge_buckets(self.buckets(collection, record_id))

    # -- internals ------------------------------------------------------------------

    def _glob_buckets(self, collection: str) -> list[dict[Conn, Subscription]]:
        if not self._globs:
            return []
        cached = self._glob_cache.get(collection)
        if cached is None:
            if len(self._glob_cache) >= _GLOB_CACHE_LIMIT:
                self._glob_cache.clear()
            cached = [
                bucket
                for pattern, bucket in self._globs.values()
                if pattern.matches_collection(collection)
            ]
            self._glob_cache[collection] = cached
        return cached

    def _bucket(self, pattern: Pattern) -> dict[Conn, Subscription]:
        """The bucket of connections subscribed to ``pattern``'s topic, made if missing."""
        kind, collection, record_id = pattern.key
        if kind is PatternKind.COLLECTION and collection is not None:
            return self._collections.setdefault(collection, {})
        if kind is PatternKind.RECORD and collection is not None and record_id is not None:
            return self._records.setdefault((collection, record_id), {})
        if kind is PatternKind.GLOB:
            entry = self._globs.get(pattern.key)
            if entry is None:
                entry = self._globs[pattern.key] = (pattern, {})
                self._glob_cache.clear()  # the new glob may match a cached collection
            return entry[1]
        return self._all

    def _unlink(self, conn: Conn, pattern: Pattern) -> None:
        """Take ``conn`` out of the topic's bucket, and delete the bucket once empty.

        Deleting empty buckets is what keeps memory flat as clients come and go.
        """
        kind, collection, record_id = pattern.key
        if kind is PatternKind.COLLECTION and collection is not None:
            self._pop(self._collections, collection, conn)
        elif kind is PatternKind.RECORD and collection is not None and record_id is not None:
            self._pop(self._records, (collection, record_id), conn)
        elif kind is PatternKind.GLOB:
            entry = self._globs.get(pattern.key)
            if entry is not None and entry[1].pop(conn, None) is not None:
                self._total -= 1
                if not entry[1]:
                    del self._globs[pattern.key]
                    self._glob_cache.clear()
        elif self._all.pop(conn, None) is not None:
            self._total -= 1

    def _pop(self, index: dict[_K, dict[Conn, Subscription]], key: _K, conn: Conn) -> None:
        bucket = index.get(key)
        if bucket is not None and bucket.pop(conn, None) is not None:
            self._total -= 1
            if not bucket:
                del index[key]


def merge_buckets(buckets: list[dict[Conn, Subscription]]) -> dict[Conn, list[Subscription]]:
    """Each connection once, with all its subscriptions of these buckets."""
    found: dict[Conn, list[Subscription]] = {}
    for bucket in buckets:
        for conn, subscription in bucket.items():
            subs = found.get(conn)
            if subs is None:
                found[conn] = [subscription]
            else:
                subs.append(subscription)
    return found


def filter_matches(filter: Mapping[str, JSONScalar] | None, record: Mapping[str, Any]) -> bool:
    """Equality on top-level fields of the record as the client would see it.

    A field missing from the record does not match, and ``true`` never equals ``1``.
    """
    if not filter:
        return True
    for field, expected in filter.items():
        if field not in record or not _equal(expected, _as_sent(record[field])):
            return False
    return True


def _as_sent(value: object) -> object:
    # Compare with what the client receives: a datetime arrives as its ISO string,
    # a UUID as text, NaN as null (the one converter protocol.encode uses too).
    if value is None or isinstance(value, str | int | list | dict | tuple):
        return value
    return json_value(value)


def _equal(expected: JSONScalar, actual: object) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual  # bools are singletons, and 1 == True must not pass
    if expected is None or actual is None:
        return expected is actual
    return bool(expected == actual)  # 1 == 1.0 like JSON numbers; "1" != 1
