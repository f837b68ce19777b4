"""The subscription registry: bookkeeping, match semantics, cost and filters."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

from runtime.realtime.fanout.registry import Subscription, SubscriptionRegistry, filter_matches
from runtime.realtime.patterns import Pattern, parse_pattern


def P(text: str) -> Pattern:
    return parse_pattern(text)


def texts(subscriptions: list[Subscription]) -> list[str]:
    return sorted(sub.pattern.text for sub in subscriptions)


def assert_internals_empty(registry: SubscriptionRegistry[Any]) -> None:
    assert registry._all == {}
    assert registry._collections == {}
    assert registry._records == {}
    assert registry._globs == {}
    assert registry._glob_cache == {}
    assert registry._by_conn == {}
    assert len(registry) == 0
    assert registry.is_empty()


# -- bookkeeping --------------------------------------------------------------------------


def test_add_discard_and_counts() -> None:
    registry: SubscriptionRegistry[str] = SubscriptionRegistry()
    assert registry.is_empty()
    assert registry.add("a", P("posts")) is True
    assert registry.add("a", P("posts/1")) is True
    assert registry.add("b", P("*")) is True
    assert (len(registry), registry.connection_count()) == (3, 2)
    assert (registry.count("a"), registry.count("b"), registry.count("zz")) == (2, 1, 0)
    assert texts(registry.subscriptions_of("a")) == ["posts", "posts/1"]
    assert registry.subscriptions_of("zz") == []

    assert registry.discard("a", P("posts/2")) is False
    assert registry.discard("zz", P("posts")) is False
    assert registry.discard("a", P("posts/1")) is True
    assert registry.discard("a", P("posts/1")) is False
    assert (len(registry), registry.count("a")) == (2, 1)


def test_resubscribing_replaces_the_filter() -> None:
    registry: SubscriptionRegistry[str] = SubscriptionRegistry()
    assert registry.add("a", P("posts"), {"x": 1}) is True
    # "posts/*" is the same subscription as "posts".
    assert registry.add("a", P("posts/*"), {"x": 2}) is False
    assert len(registry) == 1
    [subscription] = registry.subscriptions_of("a")
    assert subscription.filter == {"x": 2}
    assert subscription.pattern.text == "posts/*"
    # The topic index holds the same, updated subscription.
    assert registry.match("posts", "1") == {"a": [subscription]}
    assert registry.get("a", P("posts")) is subscription
    assert registry.get("a", P("other")) is None
    assert registry.get("nobody", P("posts")) is None
    assert registry.add("a", P("posts"), None) is False
    assert subscription.filter is None


def test_discard_by_equivalent_spelling() -> None:
    registry: SubscriptionRegistry[str] = SubscriptionRegistry()
    registry.add("a", P("posts"))
    registry.add("a", P("a**b"))
    assert registry.discard("a", P("posts/*")) is True
    assert registry.discard("a", P("a*b/*")) is True
    assert_internals_empty(registry)


def test_remove_connection() -> None:
    registry: SubscriptionRegistry[str] = SubscriptionRegistry()
    for text in ["*", "posts", "posts/1", "blog_*"]:
        registry.add("a", P(text))
    registry.add("b", P("posts"))
    assert registry.remove_connection("a") == 4
    assert registry.remove_connection("a") == 0
    assert registry.remove_connection("never") == 0
    assert (len(registry), registry.connection_count()) == (1, 1)
    assert registry.match("posts", "1") == {"b": registry.subscriptions_of("b")}


def test_nothing_leaks_after_everyone_leaves() -> None:
    registry: SubscriptionRegistry[object] = SubscriptionRegistry()
    connections = [object() for _ in range(50)]
    patterns = ["*", "posts", "posts/*", "posts/1", "posts/2", "blog_*", "*_log", "notes/x"]
    for index, conn in enumerate(connections):
        for text in patterns[: 1 + index % len(patterns)]:
            registry.add(conn, P(text), {"n": index})
        registry.match("posts", "1")  # fills the glob cache
        registry.match("blog_a")
    # Half leave by unsubscribing one by one, half by disconnecting.
    for index, conn in enumerate(connections):
        if index % 2:
            for subscription in registry.subscriptions_of(conn):
                assert registry.discard(conn, subscription.pattern)
        else:
            registry.remove_connection(conn)
    assert_internals_empty(registry)
    assert registry.match("posts", "1") == {}


# -- match semantics ------------------------------------------------------------------------


@pytest.fixture
def populated() -> SubscriptionRegistry[str]:
    registry: SubscriptionRegistry[str] = SubscriptionRegistry()
    for conn, text in [
        ("all", "*"),
        ("posts", "posts"),
        ("posts_star", "posts/*"),
        ("post1", "posts/1"),
        ("post2", "posts/2"),
        ("notes", "notes"),
        ("note1", "notes/1"),
        ("glob_p", "p*"),
        ("glob_s", "*s"),
        ("glob_blog", "blog_*"),
    ]:
        registry.add(conn, P(text))
    return registry


@pytest.mark.parametrize(
    ("collection", "record_id", "expected"),
    [
        ("posts", "1", {"all", "posts", "posts_star", "post1", "glob_p", "glob_s"}),
        ("posts", "2", {"all", "posts", "posts_star", "post2", "glob_p", "glob_s"}),
        ("posts", "3", {"all", "posts", "posts_star", "glob_p", "glob_s"}),
        # A collection-level (custom) event reaches no record subscription.
        ("posts", None, {"all", "posts", "posts_star", "glob_p", "glob_s"}),
        ("notes", "1", {"all", "notes", "note1", "glob_s"}),
        ("notes", None, {"all", "notes", "glob_s"}),
        ("blog_x", "1", {"all", "glob_blog"}),
        ("post", "1", {"all", "glob_p"}),
        ("other", "1", {"all"}),
    ],
)
def test_match(
    populated: SubscriptionRegistry[str],
    collection: str,
    record_id: str | None,
    expected: set[str],
) -> None:
    assert set(populated.match(collection, record_id)) == expected


def test_record_subscription_needs_the_exact_collection() -> None:
    registry: SubscriptionRegistry[str] = SubscriptionRegistry()
    registry.add("a", P("posts/1"))
    assert registry.match("notes", "1") == {}
    assert registry.match("posts", "10") == {}
    assert registry.match("posts") == {}
    assert set(registry.match("posts", "1")) == {"a"}


def test_each_connection_appears_once_with_all_its_matching_subscriptions() -> None:
    registry: SubscriptionRegistry[str] = SubscriptionRegistry()
    for text in ["*", "posts", "posts/1", "p*", "*s", "notes", "posts/2"]:
        registry.add("a", P(text), {"t": text})
    registry.add("b", P("posts/1"))
    found = registry.match("posts", "1")
    assert list(found) == ["a", "b"] or list(found) == ["b", "a"]
    assert texts(found["a"]) == ["*", "*s", "p*", "posts", "posts/1"]
    assert texts(found["b"]) == ["posts/1"]
    assert texts(registry.match("posts")["a"]) == ["*", "*s", "p*", "posts"]


def test_glob_changes_are_seen_by_later_matches() -> None:
    registry: SubscriptionRegistry[str] = SubscriptionRegistry()
    registry.add("a", P("x*"))
    assert set(registry.match("posts", "1")) == set()  # caches "posts": no globs match
    registry.add("b", P("po*"))  # a new glob must invalidate that
    assert set(registry.match("posts", "1")) == {"b"}
    registry.add("c", P("po*"))  # joins the existing glob's bucket
    assert set(registry.match("posts", "1")) == {"b", "c"}
    registry.remove_connection("b")
    registry.remove_connection("c")
    assert set(registry.match("posts", "1")) == set()
    registry.add("d", P("po*"))  # the same glob again, in a new bucket
    assert set(registry.match("posts", "1")) == {"d"}


# -- cost: exact topics are looked up, never scanned ------------------------------------------


class LookupOnly(dict[Any, Any]):
    """An index that may be looked up by key but not iterated."""

    def _scanned(self) -> NoReturn:
        raise AssertionError("an index of exact topics was scanned")

    def __iter__(self) -> NoReturn:
        self._scanned()

    def keys(self) -> NoReturn:
        self._scanned()

    def values(self) -> NoReturn:
        self._scanned()

    def items(self) -> NoReturn:
        self._scanned()


class Bucket(dict[Any, Any]):
    """A topic bucket that records when it is read."""

    def __init__(self, name: object, contents: dict[Any, Any], log: list[object]) -> None:
        super().__init__(contents)
        self.name, self.log = name, log

    def items(self) -> Any:
        self.log.append(self.name)
        return super().items()

    def values(self) -> Any:
        self.log.append(self.name)
        return super().values()

    def __iter__(self) -> Iterator[Any]:
        self.log.append(self.name)
        return super().__iter__()


def test_match_touches_only_the_relevant_buckets() -> None:
    registry: SubscriptionRegistry[int] = SubscriptionRegistry()
    # 10,000 connections on other collections and other records.
    for conn in range(10_000):
        registry.add(conn, P(f"c{conn % 100}"))
        registry.add(conn, P(f"c{conn % 100}/{conn}"))
        registry.add(conn, P(f"posts/{conn + 10}"))  # other records of the same collection
    for conn in range(20):
        registry.add(conn, P(f"g{conn}_*"))  # globs that do not match "posts"
    registry.add(10_001, P("posts"))
    registry.add(10_002, P("posts/7"))
    registry.add(10_003, P("pos*"))

    log: list[object] = []
    registry._collections = LookupOnly(
        {name: Bucket(name, bucket, log) for name, bucket in dict.items(registry._collections)}
    )
    registry._records = LookupOnly(
        {topic: Bucket(topic, bucket, log) for topic, bucket in dict.items(registry._records)}
    )
    registry._globs = {
        key: (pattern, Bucket(pattern.text, bucket, log))
        for key, (pattern, bucket) in registry._globs.items()
    }
    registry._glob_cache.clear()

    found = registry.match("posts", "7")
    assert set(found) == {10_001, 10_002, 10_003}
    assert sorted(map(str, log)) == ["('posts', '7')", "pos*", "posts"]

    log.clear()
    assert set(registry.match("posts")) == {10_001, 10_003}
    assert sorted(map(str, log)) == ["pos*", "posts"]

    # Once cached, the globs themselves are not tested again for the same collection.
    registry._globs = LookupOnly(registry._globs)
    log.clear()
    assert set(registry.match("posts", "7")) == {10_001, 10_002, 10_003}
    assert len(log) == 3


# -- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter", "record", "expected"),
    [
        (None, {"a": 1}, True),
        ({}, {}, True),
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1, "b": "x"}, {"a": 1, "b": "x"}, True),
        ({"a": 1, "b": "x"}, {"a": 1, "b": "y"}, False),
        ({"a": 1}, {"b": 1}, False),  # missing field
        ({"a": None}, {}, False),  # missing is not null
        ({"a": None}, {"a": None}, True),
        ({"a": None}, {"a": 0}, False),
        ({"a": None}, {"a": ""}, False),
        ({"a": True}, {"a": 1}, False),  # 1 == True in Python, not here
        ({"a": 1}, {"a": True}, False),
        ({"a": False}, {"a": 0}, False),
        ({"a": 0}, {"a": False}, False),
        ({"a": True}, {"a": True}, True),
        ({"a": False}, {"a": False}, True),
        ({"a": 1}, {"a": 1.0}, True),  # one JSON number
        ({"a": 1.5}, {"a": 1.5}, True),
        ({"a": "1"}, {"a": 1}, False),
        ({"a": 1}, {"a": "1"}, False),
        ({"a": 1}, {"a": [1]}, False),
        ({"a": "x"}, {"a": {"x": 1}}, False),
        ({"a": None}, {"a": math.nan}, True),  # NaN is sent as null
        ({"a": "2024-05-06"}, {"a": dt.date(2024, 5, 6)}, True),  # as the client sees it
        (
            {"a": "12345678-1234-5678-1234-567812345678"},
            {"a": uuid.UUID("12345678-1234-5678-1234-567812345678")},
            True,
        ),
    ],
)
def test_filter_matches(
    filter: dict[str, Any] | None, record: dict[str, Any], expected: bool
) -> None:
    assert filter_matches(filter, record) is expected
