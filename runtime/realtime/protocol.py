"""The realtime wire protocol, shared by both transports: client frames in, server frames out.

No I/O. Parsing raises only :class:`ProtocolError`: a bad client message costs an
``error`` frame, never the connection or the server. Every string of a frame, its keys
included, is checked once for what the wire can carry back out: a JSON escape such as
``"\\ud800"`` decodes to a lone surrogate, which UTF-8 cannot encode, and such a frame is
refused whole (SSE POST bodies are checked as requests are, see runtime/requests.py).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, NoReturn, TypeAlias

from ..json_values import has_lone_surrogate, holds_lone_surrogates, json_value
from .patterns import InvalidPattern, Pattern, is_valid_collection_name, parse_pattern

__all__ = [
    "RATE_LIMITED_CLOSE",
    "CloseCode",
    "Command",
    "Emit",
    "ErrorCode",
    "Frame",
    "JSONScalar",
    "Ping",
    "Pong",
    "ProtocolError",
    "Publish",
    "Refusal",
    "RequestId",
    "Subscribe",
    "Unsubscribe",
    "ack",
    "connected",
    "encode",
    "encode_batch",
    "error",
    "is_event_name",
    "parse_client_frame",
    "parse_emit",
    "parse_publish",
    "parse_subscribe",
    "ping",
    "pong",
    "subscribed",
    "unsubscribed",
]

JSONScalar: TypeAlias = str | int | float | bool | None
RequestId: TypeAlias = str | int | None
Frame: TypeAlias = dict[str, Any]  # a server frame before encoding

MAX_REQUEST_ID_LENGTH = 64
MAX_SINCE_LENGTH = 128
MAX_FILTER_FIELDS = 16
# Names an `expand` list may hold before the model is asked ([query] max_expand is less).
MAX_EXPAND_NAMES = 64
# The fields of client frames, which an error may name (any other is "a field").
_FIELDS = frozenset(
    ("type", "id", "pattern", "since", "filter", "expand", "snapshot", "name", "channel", "data")
)
_SORT = re.compile(r"-?[A-Za-z0-9_]{1,64}")
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class ErrorCode(StrEnum):
    """The ``code`` of an ``error`` frame."""

    BAD_REQUEST = "bad_request"
    INVALID_PATTERN = "invalid_pattern"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    MESSAGE_TOO_BIG = "message_too_big"
    INTERNAL_ERROR = "internal_error"  # a handler of a client event failed
    UNAVAILABLE = "unavailable"  # not now (a snapshot's table is locked): retry_after


class CloseCode(IntEnum):
    """WebSocket close codes the server uses."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down: clients reconnect
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011  # writing to this connection failed (a bug, logged)
    TRY_AGAIN_LATER = 1013  # at capacity
    SESSION_ENDED = 4401  # logout, user removed
    HEARTBEAT_TIMEOUT = 4408
    TOO_SLOW = 4429  # send queue full, or too many requests


# The contract gives one code to both reasons; an alias reads better at call sites.
RATE_LIMITED_CLOSE = CloseCode.TOO_SLOW


class ProtocolError(Exception):
    """A client frame the server cannot act on; answered with an ``error`` frame."""

    def __init__(
        self, code: ErrorCode, message: str, request_id: RequestId = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id  # the client's "id" when it could be read
        self.extra = extra  # more of the error frame: a write's `reason`, `field`, ...


@dataclass(frozen=True, slots=True)
class Subscribe:
    request_id: RequestId
    pattern: Pattern
    since: str | None = None
    # An equality object, or an expression of the filter language (bound at subscribe).
    filter: dict[str, JSONScalar] | str | None = None
    snapshot: bool = False
    # Foreign keys whose records the snapshot and the events carry (checked at subscribe).
    expand: tuple[str, ...] = ()
    sort: str | None = None  # the snapshot's order: "[-]field"; None: newest first
    limit: int | None = None  # at most this many snapshot records (within the server's cap)


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    request_id: RequestId
    pattern: Pattern


@dataclass(frozen=True, slots=True)
class Emit:
    """A client event for a Python handler; answered with an `ack` (or an error)."""

    request_id: RequestId
    name: str
    data: Any = None


@dataclass(frozen=True, slots=True)
class Publish:
    """A custom event for a channel's subscribers, published from a client."""

    request_id: RequestId
    channel: str
    name: str
    data: Any = None


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Pong:
    pass


Command: TypeAlias = Subscribe | Unsubscribe | Emit | Publish | Ping | Pong


def parse_client_frame(text: str | bytes, *, max_size: int) -> Command:
    """Parse one client frame; raise :class:`ProtocolError` for anything else."""
    obj = _json_object(text, max_size)
    request_id = _request_id(obj.get("id"))
    command = _command(obj, request_id)
    # The whole frame, whatever its fields; walked only when the text may hold one.
    if _may_hold_lone_surrogates(text) and holds_lone_surrogates(obj):
        _unencodable(obj, request_id)
    return command


def _may_hold_lone_surrogates(text: str | bytes) -> bool:
    """Whether a frame's JSON may decode to a lone surrogate: UTF-8 (bytes are decoded
    strictly) cannot carry one, so it is a `\\u` escape, unless a str held it already."""
    if isinstance(text, bytes):
        return b"\\u" in text
    return "\\u" in text or has_lone_surrogate(text)


def _command(obj: dict[str, Any], request_id: RequestId) -> Command:
    kind = obj.get("type")
    if kind == "ping":
        return Ping()
    if kind == "pong":
        return Pong()
    if kind == "subscribe":
        return parse_subscribe(obj, request_id)
    if kind == "unsubscribe":
        return Unsubscribe(request_id, _pattern(obj, request_id))
    if kind == "emit":
        return parse_emit(obj, request_id)
    if kind == "publish":
        return parse_publish(obj, request_id)
    _fail("'type' must be subscribe, unsubscribe, emit, publish, ping or pong", request_id)


def _unencodable(obj: dict[str, Any], request_id: RequestId) -> NoReturn:
    """Refuse a frame that holds text UTF-8 cannot encode, naming where."""
    where = "a field"
    for key, value in obj.items():
        if has_lone_surrogate(key) or holds_lone_surrogates(value):
            where = repr(key) if key in _FIELDS else where
            break
    _fail(f"{where} holds a lone surrogate (like \\ud800), which is not text", request_id)


def _json_object(text: str | bytes, max_size: int) -> dict[str, Any]:
    """The JSON object a frame holds, the frame at most `max_size` bytes of UTF-8."""
    # A character is at least one byte: no need to encode a str that is already too long.
    if len(text) > max_size or (
        isinstance(text, str) and len(text.encode("utf-8", "surrogatepass")) > max_size
    ):
        raise ProtocolError(ErrorCode.MESSAGE_TOO_BIG, f"message exceeds {max_size} bytes")
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        obj = json.loads(text, parse_constant=_finite_float, parse_float=_finite_float)
    except UnicodeDecodeError:  # before ValueError: it is one
        raise ProtocolError(ErrorCode.BAD_REQUEST, "message is not valid UTF-8") from None
    except (ValueError, RecursionError):
        # RecursionError is not a ValueError: "[[[[…" nested deeply enough raises it.
        raise ProtocolError(ErrorCode.BAD_REQUEST, "message is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "message must be a JSON object")
    return obj


def parse_emit(obj: dict[str, Any], request_id: RequestId) -> Emit:
    """The fields of an emit (a WebSocket frame, or an item of an SSE POST)."""
    return Emit(request_id, _event_name(obj, request_id), obj.get("data"))


def is_event_name(name: object) -> bool:
    """A client event's or custom event's name: 1 to 64 of A-Z a-z 0-9 _ . : -"""
    return isinstance(name, str) and _EVENT_NAME.fullmatch(name) is not None


def parse_publish(obj: dict[str, Any], request_id: RequestId) -> Publish:
    """The fields of a publish (a WebSocket frame, or an item of an SSE POST)."""
    channel = obj.get("channel")
    if not isinstance(channel, str) or not is_valid_collection_name(channel):
        _fail("'channel' must be a channel's name", request_id)
    return Publish(request_id, channel, _event_name(obj, request_id), obj.get("data"))


def _event_name(obj: dict[str, Any], request_id: RequestId) -> str:
    name = obj.get("name")
    if not isinstance(name, str) or not is_event_name(name):
        _fail("'name' must be 1 to 64 of A-Z a-z 0-9 _ . : -", request_id)
    return name


def parse_subscribe(obj: dict[str, Any], request_id: RequestId) -> Subscribe:
    """The fields of a subscribe (a WebSocket frame, or an item of an SSE POST)."""
    pattern = _pattern(obj, request_id)
    # Unknown fields are ignored so that newer clients can talk to older servers;
    # null means the same as absent.
    since = obj.get("since")
    if since is not None and not (isinstance(since, str) and 0 < len(since) <= MAX_SINCE_LENGTH):
        _fail(f"'since' must be an event id of 1 to {MAX_SINCE_LENGTH} characters", request_id)
    snapshot, sort, limit = _snapshot(obj.get("snapshot"), request_id)
    return Subscribe(
        request_id,
        pattern,
        since,
        _filter(obj.get("filter"), request_id),
        snapshot,
        _expand(obj.get("expand"), request_id),
        sort,
        limit,
    )


def _pattern(obj: dict[str, Any], request_id: RequestId) -> Pattern:
    if obj.get("pattern") is None:
        _fail("'pattern' is required", request_id)
    try:
        return parse_pattern(obj["pattern"])
    except InvalidPattern as exc:
        raise ProtocolError(ErrorCode.INVALID_PATTERN, str(exc), request_id) from None


def _snapshot(value: object, request_id: RequestId) -> tuple[bool, str | None, int | None]:
    """`true`, or `{"sort": "[-]field", "limit": n}` (either optional); null or false: none."""
    if value is None or isinstance(value, bool):
        return bool(value), None, None
    if not isinstance(value, dict):
        _fail("'snapshot' must be true, false or an object", request_id)
    sort, limit = value.get("sort"), value.get("limit")
    if sort is not None and not (isinstance(sort, str) and _SORT.fullmatch(sort)):
        _fail("'snapshot.sort' must be a field name, '-' first for descending", request_id)
    if limit is not None and not (
        isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= 1_000_000
    ):
        _fail("'snapshot.limit' must be a whole number from 1", request_id)
    return True, sort, limit


def _finite_float(literal: str) -> float:
    # Rejects the NaN and Infinity literals (parse_constant) and also numbers such as
    # 1e400 (parse_float), which would otherwise parse to inf.
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _fail(message: str, request_id: RequestId) -> NoReturn:
    raise ProtocolError(ErrorCode.BAD_REQUEST, message, request_id)


def _request_id(value: object) -> RequestId:
    # bool is an int subclass, but true/false as an id is surely a client bug.
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    # An id is echoed in the reply: one that UTF-8 cannot encode is not read.
    if (
        not isinstance(value, str)
        or len(value) > MAX_REQUEST_ID_LENGTH
        or has_lone_surrogate(value)
    ):
        _fail(
            f"'id' must be null, an integer or a string of <= {MAX_REQUEST_ID_LENGTH} characters",
            None,
        )
    return value


def _expand(value: object, request_id: RequestId) -> tuple[str, ...]:
    """A list of field names (checked against the model at subscribe); null: none."""
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or len(value) > MAX_EXPAND_NAMES
        or not all(isinstance(name, str) and 0 < len(name) <= 64 for name in value)
    ):
        _fail(f"'expand' must be a list of at most {MAX_EXPAND_NAMES} field names", request_id)
    return tuple(value)


def _filter(value: object, request_id: RequestId) -> dict[str, JSONScalar] | str | None:
    if isinstance(value, str):
        # An expression: parsed, bounded and bound to the model at subscribe time (see
        # broker/authorization.py); a blank one filters nothing, as in the records API.
        return value if value.strip() else None
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_FILTER_FIELDS:
        _fail(
            f"'filter' must be an expression or an object of at most {MAX_FILTER_FIELDS} fields",
            request_id,
        )
    # JSON object keys are always strings; values must be scalars (equality only).
    if not all(v is None or isinstance(v, str | int | float | bool) for v in value.values()):
        _fail("'filter' values must be strings, numbers, booleans or null", request_id)
    # An empty filter matches everything: keep it as no filter at all.
    return dict(value) or None


def connected(
    connection_id: str,
    user: dict[str, Any] | None,
    heartbeat: float,
    stream_key: str | None = None,
) -> Frame:
    """The first frame. An SSE stream's carries its `stream_key` too: the secret its
    POSTs prove they come from its client with (the connection id may be known to
    others; app code gets it)."""
    frame = dict(type="connected", connection_id=connection_id, user=user, heartbeat=heartbeat)
    if stream_key is not None:
        frame["stream_key"] = stream_key
    return frame


def subscribed(
    request_id: RequestId,
    pattern_text: str,
    recovered: bool,
    snapshot: Frame | None = None,
    presence: list[Any] | None = None,
) -> Frame:
    """``snapshot`` is ``{"records": [...], "position": "<event id>", "complete": bool}``;
    ``presence`` the users here now, on a topic that tracks presence."""
    frame: Frame = dict(type="subscribed", id=request_id, pattern=pattern_text, recovered=recovered)
    if snapshot is not None:
        frame["snapshot"] = snapshot
    if presence is not None:
        frame["presence"] = presence
    return frame


def unsubscribed(request_id: RequestId, pattern_text: str) -> Frame:
    return {"type": "unsubscribed", "id": request_id, "pattern": pattern_text}


def error(
    request_id: RequestId,
    code: ErrorCode | str,
    message: str,
    retry_after: float | None = None,
    **extra: Any,
) -> Frame:
    """An `error` frame; `extra` adds fields (a refused write's `reason`, `field`...)."""
    # ErrorCode(code) fails loudly on a code the contract does not know.
    code = ErrorCode(code).value
    frame: Frame = {**extra, "type": "error", "id": request_id, "code": code, "message": message}
    if retry_after is not None:
        frame["retry_after"] = retry_after
    return frame


def ack(request_id: RequestId, data: Any) -> Frame:
    """The answer to an emit (the handler's return value) or a publish (the event id)."""
    return {"type": "ack", "id": request_id, "data": data}


def ping() -> Frame:
    return {"type": "ping"}


def pong() -> Frame:
    return {"type": "pong"}


def encode(frame: object) -> str:
    """Compact JSON text of a frame; NaN and infinities become null (JSON has neither).

    The text is always UTF-8 encodable, so that a frame can be sent whoever gets it: a
    lone surrogate is written as its JSON escape (`\\ud800`). Clients' text holding one
    is refused at the edge and app code's broadcasts and answers too; what is left is the
    app's own account of a user (in `connected`, presence and publications).
    """
    try:
        text = _ENCODER.encode(frame)
    except ValueError:
        # Rare, so the walk is paid only when the fast path found a non-finite float.
        text = _ENCODER.encode(_finite(frame))
    if has_lone_surrogate(text):  # at once for ASCII text
        return _ASCII_ENCODER.encode(_finite(frame))
    return text


def encode_batch(frames: list[str]) -> str:
    """A JSON array of already-encoded frames (for ``?batch=1`` clients), not re-encoded."""
    return "[" + ",".join(frames) + "]"


# One encoder for every frame: json.dumps() with options builds a new one per call.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=json_value
)
# For the rare frame holding a lone surrogate: every character past ASCII escaped.
_ASCII_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=True, allow_nan=False, default=json_value
)


def _finite(obj: object) -> object:
    """A copy of ``obj`` with non-finite floats replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(item) for item in obj]
    return obj


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a connection is not accepted, as each transport says it: an HTTP answer
    (`status`, `code`, `message`, `Retry-After`), or, where `close_code` is set, a
    WebSocket accepted and closed at once with that code and `reason`."""

    status: int
    code: str
    message: str
    close_code: int | None = None
    reason: str = ""
    retry_after: int | None = None

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
