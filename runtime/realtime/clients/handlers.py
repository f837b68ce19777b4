"""Client events: a browser's `emit(name, data)` answered by a Python handler.

    @realtime.on("chat")
    def chat(data, sender):            # sync (runs in a worker thread) or async
        ...
        return {"ok": True}            # the acknowledgement the client gets

As with Flask-SocketIO's `@socketio.on`, but answered: the handler's return value comes
back as an `ack` frame with the emit's id, and an error it raises as an `error` frame
(`ApiError`s keep their meaning, and so does a write the database refuses or a
model's `validate()` refuses, with the records API's `reason` and fields; anything else
is `internal_error` and is logged).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee

from ...constraint_errors import violation_answer, violation_of
from ...db import thread_connections_closed
from ...errors import ApiError
from ...json_values import sendable_tree
from ...validation import acting_as
from ..protocol import ErrorCode, ProtocolError, RequestId, is_event_name

__all__ = ["Handler", "Sender", "call_handler", "check_event_name"]

log = logging.getLogger("runtime.realtime")

Handler = Callable[[Any, "Sender"], Any]

# An ApiError's code as the realtime protocol says it.
_CODES = {
    "bad_request": ErrorCode.BAD_REQUEST,
    "unauthorized": ErrorCode.FORBIDDEN,
    "forbidden": ErrorCode.FORBIDDEN,
    "rate_limited": ErrorCode.RATE_LIMITED,
}


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent a client event: the connection and its user (None for a visitor)."""

    connection_id: str
    user: Any


def check_event_name(name: str) -> str:
    if not is_event_name(name):
        raise ValueError(f"event name {name!r}: [A-Za-z0-9_.:-], 1 to 64 characters")
    return name


async def call_handler(handler: Handler, data: Any, sender: Sender, request_id: RequestId) -> Any:
    """The handler's answer, JSON-safe; or a ProtocolError to send back instead (an
    answer that is not, text UTF-8 cannot encode among it, is an `internal_error`)."""
    try:
        with acting_as(sender.user):  # what a model's validate() is given as the user
            return await _answer(handler, data, sender)
    except peewee.IntegrityError as exc:  # a write the database refused: as the API says it
        return _protocol_error(violation_answer(violation_of(exc, None), None), request_id)
    except ApiError as error:  # a ValidationError of a model's validate() among them
        return _protocol_error(error, request_id)
    except Exception:
        log.exception("realtime: the handler of %r failed", getattr(handler, "__name__", handler))
        return ProtocolError(ErrorCode.INTERNAL_ERROR, "the server could not answer", request_id)


async def _answer(handler: Handler, data: Any, sender: Sender) -> Any:
    if inspect.iscoroutinefunction(handler):
        result = await handler(data, sender)
    else:  # sync code may block (a query, a hash): not on the event loop
        # The context goes along; the thread keeps no database connection afterwards.
        result = await asyncio.to_thread(_in_worker_thread, handler, data, sender)
    return sendable_tree(result, "the answer")


def _in_worker_thread(handler: Handler, data: Any, sender: Sender) -> Any:
    with thread_connections_closed():
        return handler(data, sender)


def _protocol_error(error: ApiError, request_id: RequestId) -> ProtocolError:
    """An `ApiError` as an error frame: its code as the protocol knows it (`conflict` is
    not one: a `bad_request` whose `reason` says more), and its fields."""
    code = _CODES.get(error.code, ErrorCode.BAD_REQUEST)
    return ProtocolError(code, error.message, request_id, **error.extra)
