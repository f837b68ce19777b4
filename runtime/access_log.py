"""Access log lines that a client cannot forge: what came from the request is escaped.

A path such as `/x%0aFORGED ...` decodes to a newline; written as it is, it would start
a second, fake log line. Every value Hypercorn's access log format takes from a request
goes through `escape_log_text` first, so each request is one line.

Hypercorn writes a request's line once its answer ends. A stream (SSE) may last hours,
so its start is logged too (`stream_opened`, `... 200 stream opened`), through the same
escaping; and when its client goes away, which Hypercorn logs without a status (`- -`),
its line has the status the stream was answered with.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, cast

from hypercorn.logging import AccessLogAtoms, Logger
from hypercorn.typing import ResponseSummary, WWWScope

__all__ = [
    "ACCESS_LOG_FORMAT",
    "STREAM_OPENED_FORMAT",
    "SafeAccessLogger",
    "escape_log_text",
    "stream_opened",
]

ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(D)sus'
STREAM_OPENED_FORMAT = '%(h)s "%(r)s" %(s)s stream opened'
# The scope's note of a stream's answer head: the status its last line says.
_STARTED = "runtime.response_started"

access_log = logging.getLogger("runtime.access")

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

    async def access(
        self, request: WWWScope, response: ResponseSummary | None, request_time: float
    ) -> None:
        if response is None:  # the client went away while answered: a stream's head
            response = cast(Mapping[str, Any], request).get(_STARTED)
        await super().access(request, response, request_time)  # type: ignore[arg-type]


def stream_opened(
    scope: MutableMapping[str, Any], status: int, headers: Iterable[tuple[bytes, bytes]]
) -> None:
    """Log now that a stream's answer started, and note its status for its last line."""
    response: ResponseSummary = {"status": status, "headers": list(headers)}
    scope[_STARTED] = response
    if access_log.isEnabledFor(logging.INFO):
        atoms = _EscapedAtoms(cast(WWWScope, scope), response, 0.0)
        access_log.info(STREAM_OPENED_FORMAT, atoms)
