"""Subscription patterns: which topics a client asks to hear about.

A record event's topic is ``<collection>/<record id>``; a custom event's topic is
``<collection>``. A pattern names one record (``posts/42``), every record of a
collection (``posts`` or ``posts/*``), every collection (``*``) or the collections
whose names match a glob (``blog_*``). Parsing is strict: anything the grammar does
not allow is an :class:`InvalidPattern`, never a pattern that silently matches nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeAlias

__all__ = [
    "MAX_PATTERN_LENGTH",
    "InvalidPattern",
    "Pattern",
    "PatternKey",
    "PatternKind",
    "is_valid_collection_name",
    "is_valid_record_id",
    "parse_pattern",
]

_COLLECTION_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
_RECORD_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_GLOB_RE = re.compile(r"[A-Za-z0-9_*]{1,64}")
# Explicit ASCII classes rather than \w: \w also matches unicode letters and digits.
_NAME_CHARS = "[A-Za-z0-9_]"

# The longest valid pattern is a 64-character collection, "/" and a 64-character id.
MAX_PATTERN_LENGTH = 64 + 1 + 64
# Error messages quote at most this much of what the client sent.
_PREVIEW = 60


class InvalidPattern(ValueError):
    """A subscription pattern the grammar does not allow (contract code ``invalid_pattern``)."""


class PatternKind(Enum):
    """What a pattern covers."""

    ALL = "all"  # "*"
    COLLECTION = "collection"  # "posts" or "posts/*"
    RECORD = "record"  # "posts/42"
    GLOB = "glob"  # "blog_*", "*_log", optionally followed by "/*"


# Which of (collection, record_id) each kind sets.
_SHAPES = {
    PatternKind.ALL: (False, False),
    PatternKind.COLLECTION: (True, False),
    PatternKind.RECORD: (True, True),
    PatternKind.GLOB: (True, False),
}

# (kind, collection or canonical glob, record id): equal for equivalent spellings.
PatternKey: TypeAlias = tuple[PatternKind, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Pattern:
    """A parsed pattern. Build it with :func:`parse_pattern`.

    ``text`` is kept as the client wrote it (replies echo it) but takes no part in
    equality or hashing, so ``posts`` and ``posts/*`` are the same pattern.
    """

    text: str = field(compare=False)
    kind: PatternKind
    collection: str | None
    record_id: str | None
    _glob: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Hand-built patterns must have the shape parse_pattern gives: the registry
        # relies on it to find a pattern's bucket.
        shape = (self.collection is not None, self.record_id is not None)
        if shape != _SHAPES[self.kind]:
            raise InvalidPattern(f"{self.kind.name} pattern with the wrong fields set")
        if self.kind is PatternKind.GLOB and self.collection is not None:
            # Compiled once per pattern: matching runs for every published event.
            object.__setattr__(self, "_glob", _compile_glob(self.collection))

    @property
    def key(self) -> PatternKey:
        """A hashable canonical form: one subscription per key and connection."""
        return (self.kind, self.collection, self.record_id)

    def matches_collection(self, name: str) -> bool:
        """Whether a collection-level event (or every record) of ``name`` is covered.

        A record pattern covers one record only, never the collection's other events.
        """
        if self.kind is PatternKind.ALL:
            return True
        if self.kind is PatternKind.COLLECTION:
            return self.collection == name
        if self.kind is PatternKind.GLOB:
            glob = self._glob  # compiled in __post_init__
            return glob is not None and glob.fullmatch(name) is not None
        return False

    def matches(self, collection: str, record_id: str | None = None) -> bool:
        """Whether an event on ``collection/record_id`` (or ``collection``) is covered."""
        if self.kind is PatternKind.RECORD:
            return self.collection == collection and self.record_id == record_id
        return self.matches_collection(collection)


def is_valid_collection_name(name: object) -> bool:
    """``[A-Za-z0-9_]{1,64}``."""
    return isinstance(name, str) and _COLLECTION_RE.fullmatch(name) is not None


def is_valid_record_id(value: object) -> bool:
    """``[A-Za-z0-9_-]{1,64}``."""
    return isinstance(value, str) and _RECORD_ID_RE.fullmatch(value) is not None


def parse_pattern(text: object) -> Pattern:
    """Parse what a client sent as a pattern, or raise :class:`InvalidPattern`."""
    if not isinstance(text, str):
        raise InvalidPattern("pattern must be a string")
    if not text:
        raise InvalidPattern("pattern is empty")
    if len(text) > MAX_PATTERN_LENGTH:
        raise InvalidPattern(f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    head, slash, tail = text.partition("/")
    if "/" in tail:
        raise InvalidPattern(f"pattern {_preview(text)} has more than two segments")
    if "*" in head:
        return _glob_pattern(text, head, slash, tail)
    return _named_pattern(text, head, slash, tail)


def _glob_pattern(text: str, head: str, slash: str, tail: str) -> Pattern:
    """``*``, ``glob`` or ``glob/*``: every collection, or those the glob matches."""
    if _GLOB_RE.fullmatch(head) is None:
        raise InvalidPattern(
            f"pattern {_preview(text)}: a collection glob is made of [A-Za-z0-9_*]"
        )
    if slash and tail != "*":
        raise InvalidPattern(f"pattern {_preview(text)}: a wildcard cannot name a record")
    # "a**b" matches what "a*b" matches; one key for both.
    glob = re.sub(r"\*+", "*", head)
    if glob == "*":
        return Pattern(text, PatternKind.ALL, None, None)
    return Pattern(text, PatternKind.GLOB, glob, None)


def _named_pattern(text: str, head: str, slash: str, tail: str) -> Pattern:
    """``name``, ``name/*`` (the collection) or ``name/id`` (one record)."""
    if not is_valid_collection_name(head):
        raise InvalidPattern(f"pattern {_preview(text)}: a collection name is [A-Za-z0-9_]{{1,64}}")
    if not slash or tail == "*":
        return Pattern(text, PatternKind.COLLECTION, head, None)
    if not is_valid_record_id(tail):
        raise InvalidPattern(f"pattern {_preview(text)}: a record id is [A-Za-z0-9_-]{{1,64}}")
    return Pattern(text, PatternKind.RECORD, head, tail)


def _compile_glob(glob: str) -> re.Pattern[str]:
    """Compile a ``*`` glob to a regex that cannot backtrack catastrophically.

    A naive translation (``a*a*a*…c`` → ``a[…]*a[…]*…c``) takes exponential time on a
    near-miss, and globs come from clients. Matching each inner literal at its leftmost
    occurrence is always right for ``*``-only globs, so inner parts are atomic groups
    that never give back what they matched: linear in the name per inner literal.
    """
    parts = glob.split("*")
    prefix, middles, suffix = parts[0], [p for p in parts[1:-1] if p], parts[-1]
    regex = re.escape(prefix)
    regex += "".join(f"(?>{_NAME_CHARS}*?{re.escape(part)})" for part in middles)
    regex += f"{_NAME_CHARS}*{re.escape(suffix)}"
    return re.compile(regex)


def _preview(text: str) -> str:
    """Quote client input in an error message without echoing all of it."""
    if len(text) > _PREVIEW:
        return repr(text[:_PREVIEW]) + "…"
    return repr(text)
