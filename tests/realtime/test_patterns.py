"""Subscription patterns: the grammar, normalisation and glob matching."""

from __future__ import annotations

import pytest

from runtime.realtime.patterns import (
    MAX_PATTERN_LENGTH,
    InvalidPattern,
    Pattern,
    PatternKind,
    is_valid_collection_name,
    is_valid_record_id,
    parse_pattern,
)

ALL, COLLECTION, RECORD, GLOB = (
    PatternKind.ALL,
    PatternKind.COLLECTION,
    PatternKind.RECORD,
    PatternKind.GLOB,
)


@pytest.mark.parametrize(
    ("text", "kind", "collection", "record_id"),
    [
        ("*", ALL, None, None),
        ("*/*", ALL, None, None),
        ("**", ALL, None, None),
        ("posts", COLLECTION, "posts", None),
        ("posts/*", COLLECTION, "posts", None),
        ("Posts_2", COLLECTION, "Posts_2", None),
        ("_", COLLECTION, "_", None),
        ("c" * 64, COLLECTION, "c" * 64, None),
        ("posts/42", RECORD, "posts", "42"),
        ("posts/a-B_9", RECORD, "posts", "a-B_9"),
        ("posts/-", RECORD, "posts", "-"),
        ("c" * 64 + "/" + "r" * 64, RECORD, "c" * 64, "r" * 64),
        ("blog_*", GLOB, "blog_*", None),
        ("*_log", GLOB, "*_log", None),
        ("a*b*", GLOB, "a*b*", None),
        ("blog_*/*", GLOB, "blog_*", None),
        ("a**b", GLOB, "a*b", None),
        ("*" * 63 + "x", GLOB, "*x", None),
    ],
)
def test_valid_patterns(
    text: str, kind: PatternKind, collection: str | None, record_id: str | None
) -> None:
    pattern = parse_pattern(text)
    assert pattern.text == text  # kept as written: replies echo it
    assert (pattern.kind, pattern.collection, pattern.record_id) == (kind, collection, record_id)
    assert pattern.key == (kind, collection, record_id)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "/",
        "posts/",
        "/42",
        "//",
        "posts//42",
        "posts/42/x",
        "posts/*/*",
        "posts/**",
        "posts/4*2",
        "blog_*/42",
        "*/42",
        "*/",
        "pos ts",
        "posts/4 2",
        " posts",
        "posts\n",
        "a-b",
        "a.b",
        "pöst",
        "posts/ä",
        "post?",
        "posts[0]",
        "blog_[ab]",
        "blog_?",
        "{a,b}",
        "c" * 65,
        "c" * 65 + "/1",
        "posts/" + "r" * 65,
        "*" * 65,
        "x" * (MAX_PATTERN_LENGTH + 1),
        "x" * 10_000,
    ],
)
def test_invalid_patterns(text: str) -> None:
    with pytest.raises(InvalidPattern):
        parse_pattern(text)


@pytest.mark.parametrize("value", [None, 42, 4.2, True, b"posts", ["posts"], {"p": 1}])
def test_non_string_patterns_are_invalid(value: object) -> None:
    with pytest.raises(InvalidPattern, match="string"):
        parse_pattern(value)


def test_invalid_pattern_is_a_value_error_with_a_bounded_message() -> None:
    assert issubclass(InvalidPattern, ValueError)
    with pytest.raises(InvalidPattern) as info:
        parse_pattern("posts/" + "x" * 100 + "!")
    message = str(info.value)
    assert "record id" in message
    assert "x" * 61 not in message  # never echoes more than ~60 characters of input
    assert len(message) < 140


def test_too_long_message_does_not_echo_input() -> None:
    with pytest.raises(InvalidPattern, match="longer than") as info:
        parse_pattern("y" * 5000)
    assert "yyy" not in str(info.value)


def test_collection_and_collection_star_are_the_same_pattern() -> None:
    plain, star = parse_pattern("posts"), parse_pattern("posts/*")
    assert plain.key == star.key
    assert plain == star
    assert hash(plain) == hash(star)
    assert {plain, star} == {plain}
    assert plain.text == "posts"
    assert star.text == "posts/*"


def test_distinct_patterns_have_distinct_keys() -> None:
    texts = ["*", "posts", "posts/1", "posts/2", "post", "post*", "posts_*", "other"]
    keys = {parse_pattern(text).key for text in texts}
    assert len(keys) == len(texts)


def test_equivalent_globs_share_a_key() -> None:
    assert parse_pattern("a**b").key == parse_pattern("a*b").key
    assert parse_pattern("blog_*/*").key == parse_pattern("blog_*").key
    assert parse_pattern("*/*").key == parse_pattern("*").key == parse_pattern("***").key


@pytest.mark.parametrize(
    ("glob", "name", "expected"),
    [
        ("blog_*", "blog_", True),
        ("blog_*", "blog_posts", True),
        ("blog_*", "blog", False),
        ("blog_*", "my_blog_posts", False),
        ("blog_*", "Blog_posts", False),  # names are case-sensitive
        ("*_log", "audit_log", True),
        ("*_log", "_log", True),
        ("*_log", "audit_logs", False),
        ("a*b*", "ab", True),
        ("a*b*", "axxbyy", True),
        ("a*b*", "axxyy", False),
        ("a*b*", "bab", False),
        ("*a*ab", "aab", True),
        ("*ab*b", "abb", True),
        ("*ab*b", "ab", False),
        ("a*a", "a", False),
        ("a*a", "aa", True),
        ("x*y*z", "x_y_z", True),
        ("x*y*z", "xzy", False),
        ("*_*", "a_b", True),
        ("*_*", "ab", False),
        ("a*b", "a/b", False),  # "*" never crosses into the record part
        ("a*b", "a-b", False),  # nor matches characters a name cannot have
    ],
)
def test_glob_matching(glob: str, name: str, expected: bool) -> None:
    assert parse_pattern(glob).matches_collection(name) is expected


def test_glob_matching_does_not_backtrack_catastrophically() -> None:
    # A naive regex takes exponential time here; this returns at once or never.
    pattern = parse_pattern("*a" * 20 + "*c")
    assert pattern.kind is GLOB
    assert pattern.matches_collection("a" * 64) is False
    assert pattern.matches_collection("a" * 63 + "c") is True
    assert parse_pattern("*_" * 31 + "*x").matches_collection("_" * 64) is False


def test_matches_collection_per_kind() -> None:
    assert parse_pattern("*").matches_collection("anything")
    assert parse_pattern("posts").matches_collection("posts")
    assert parse_pattern("posts/*").matches_collection("posts")
    assert not parse_pattern("posts").matches_collection("post")
    assert not parse_pattern("posts").matches_collection("posts2")
    # A record pattern never covers collection-level events.
    assert not parse_pattern("posts/42").matches_collection("posts")


def test_matches_record_and_collection_events() -> None:
    record = parse_pattern("posts/42")
    assert record.matches("posts", "42")
    assert not record.matches("posts", "43")
    assert not record.matches("posts")
    assert not record.matches("other", "42")
    assert parse_pattern("posts").matches("posts", "42")
    assert parse_pattern("posts").matches("posts")
    assert parse_pattern("p*").matches("posts", "1")
    assert parse_pattern("*").matches("x")


def test_patterns_are_immutable() -> None:
    pattern = parse_pattern("posts")
    with pytest.raises(AttributeError):
        pattern.text = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kind", "collection", "record_id"),
    [
        (ALL, "posts", None),
        (COLLECTION, None, None),
        (COLLECTION, "posts", "1"),
        (RECORD, "posts", None),
        (GLOB, None, None),
    ],
)
def test_hand_built_patterns_must_be_consistent(
    kind: PatternKind, collection: str | None, record_id: str | None
) -> None:
    with pytest.raises(InvalidPattern):
        Pattern("x", kind, collection, record_id)


@pytest.mark.parametrize(
    ("value", "collection", "record_id"),
    [
        ("posts", True, True),
        ("a" * 64, True, True),
        ("a" * 65, False, False),
        ("a-b", False, True),
        ("", False, False),
        ("a b", False, False),
        ("é", False, False),
        ("٣", False, False),  # a unicode digit is not [0-9]
        ("a\n", False, False),
        ("*", False, False),
        (42, False, False),
        (None, False, False),
    ],
)
def test_name_and_id_validators(value: object, collection: bool, record_id: bool) -> None:
    assert is_valid_collection_name(value) is collection
    assert is_valid_record_id(value) is record_id
