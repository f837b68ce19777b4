"""What JSON and the wire can carry: the converter, and the one check for text that
UTF-8 cannot encode (a lone surrogate), which every edge uses."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from runtime.json_values import has_lone_surrogate, holds_lone_surrogates, sendable_tree


@pytest.mark.parametrize(
    ("text", "lone"),
    [
        ("", False),
        ("plain ascii", False),
        ("é, ß and \N{GRINNING FACE}", False),
        ("\ud83d\ude00", True),  # a pair as two code points is two lone halves in Python
        ("\ud800", True),
        ("ok \udfff", True),
        ("\udbff", True),
    ],
)
def test_a_lone_surrogate_is_found_in_any_text(text: str, lone: bool) -> None:
    assert has_lone_surrogate(text) is lone
    assert holds_lone_surrogates(text) is lone
    encodable = True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        encodable = False
    assert encodable is not lone


@pytest.mark.parametrize(
    "value",
    [
        {"\ud800": 1},
        [1, [2, [3, {"k": ["\udc00"]}]]],
        {"a": {"b": {"c": "x\ud83d"}}},
    ],
)
def test_lone_surrogates_are_found_anywhere_keys_included(value: Any) -> None:
    assert holds_lone_surrogates(value)
    with pytest.raises(ValueError, match="the answer holds a lone surrogate"):
        sendable_tree(value, "the answer")


def test_the_walk_survives_any_depth() -> None:
    deep: Any = "\ud800"
    for _ in range(100_000):
        deep = [deep]
    assert holds_lone_surrogates(deep)


def test_a_sendable_tree_is_a_json_copy() -> None:
    data = {"when": datetime.date(2026, 1, 2), "tags": {"x"}, "pair": "\N{GRINNING FACE}"}
    tree = sendable_tree(data)
    assert tree == {"when": "2026-01-02", "tags": ["x"], "pair": "\N{GRINNING FACE}"}
    data["tags"].add("y")
    assert tree["tags"] == ["x"]
