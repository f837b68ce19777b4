"""Access log lines that a client cannot forge: what came from the request is escaped.

A path such as `/x%0aFORGED ...` decodes to a newline; written as it is, it would start
a second, fake log line. Every value Hypercorn's access log format takes from a request
goes through `escape_log_text` first, so each request is one line.
"""

from __future__ import annotations

from collections.abc import Mapping

from hypercorn.logging import AccessLogAtoms, Logger
from hypercorn.typing import ResponseSummary, WWWScope

__all__ = ["SafeAccessLogger", "escape_log_text"]

_NAMED_ESCAPES = {"\\": "\\\\", '"': '\\"'}


def escape_log_text(text: str) -> str:
    """`text` on one line: control and other unprintable characters as Python escapes
    (`\\n`, `\\x1b`, `\\u2028`); backslash and double quote escaped, as Apache does, so
    that a quoted field cannot be closed early."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(
        _NAMED_ESCAPES.get(char)
        or (char if char.isprintable() else char.encode("unicode_escape").decode("ascii"))
        for char in text
    )


class _EscapedAtoms(AccessLogAtoms):
    def __getitem__(self, key: str) -> str:
        value = super().__getitem__(key)
        return escape_log_text(value) if isinstance(value, str) else value


class SafeAccessLogger(Logger):
    """Hypercorn's logger with escaped access-log atoms (`config.logger_class`)."""

    def atoms(
        self, request: WWWScope, response: ResponseSummary | None, request_time: float
    ) -> Mapping[str, str]:
        return _EscapedAtoms(request, response, request_time)
