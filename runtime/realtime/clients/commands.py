"""One router for every client command, whatever carried it: a WebSocket frame, the
patterns of an SSE stream's request, or an item of an SSE POST. One parser, one rate
limit (`realtime.message_rate_limit`), one set of caps, one way to carry each out.

Over WebSocket the replies go on the connection's stream; for an SSE POST they are the
POST's answer (the stream gets the events and the snapshot merges that follow them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...errors import BadRequest, RateLimited
from .. import protocol
from ..events import custom_event, public_user
from ..patterns import InvalidPattern, parse_pattern
from ..protocol import (
    RATE_LIMITED_CLOSE,
    Command,
    Emit,
    ErrorCode,
    Frame,
    Ping,
    ProtocolError,
    Publish,
    Subscribe,
    Unsubscribe,
)
from .handlers import Sender, call_handler

if TYPE_CHECKING:
    from ...config import RealtimeConfig
    from ...realtime_broker import Broker
    from ..channels import Channel
    from ..connections.connection import Connection
    from ..connections.message_limit import MessageLimit
    from .handlers import Handler

__all__ = ["MAX_EMITS_IN_FLIGHT", "MAX_REJECTED", "CommandRouter"]

log = logging.getLogger("runtime.realtime")

# Messages refused in a row for the rate limit before the connection is closed (4429).
MAX_REJECTED = 20
# Client events of one connection whose handlers are still running; more are refused.
MAX_EMITS_IN_FLIGHT = 8
# What an SSE POST may carry, by kind, in the order they are carried out.
POST_KINDS = ("subscribe", "unsubscribe", "emit", "publish")


class CommandRouter:
    def __init__(
        self,
        broker: Broker,
        config: RealtimeConfig,
        message_limit: MessageLimit,
        handlers: Mapping[str, Handler],
        channels: Mapping[str, Channel],
    ) -> None:
        self._broker = broker
        self._subscribing = broker.subscribing
        self._config = config
        self._message_limit = message_limit
        # The app's, declared on its Realtime extension (read live).
        self._handlers = handlers
        self._channels = channels

    # -- what carries commands ------------------------------------------------------

    async def frame(self, conn: Connection, raw: str | bytes) -> None:
        """One WebSocket frame: parsed, rate-limited and carried out; its reply (an
        error for a malformed one) goes on the stream. Every frame counts against the
        rate limit, the malformed ones too."""
        command: Command | ProtocolError
        try:
            command = protocol.parse_client_frame(raw, max_size=self._config.max_message_size)
        except ProtocolError as error:
            command = error
        wait = self._rate_limit(conn)
        if wait:
            if not conn.closing:
                request_id = getattr(command, "request_id", None)
                refusal = ProtocolError(ErrorCode.RATE_LIMITED, "too many messages", request_id)
                _send(conn, _error(refusal, retry_after=wait))
        elif isinstance(command, Subscribe):
            await self._subscribing.subscribe(conn, [command])  # its replies go on the stream
        elif isinstance(command, Emit):
            self._spawn_emit(conn, command)
        else:
            reply = await self._answer(conn, command)
            if reply is not None:
                _send(conn, reply)

    def stream_subscriptions(
        self,
        conn: Connection,
        patterns: list[str],
        *,
        since: str | None,
        snapshot: bool,
        filter: str | None = None,
        expand: list[str] | None = None,
    ) -> list[Subscribe | ProtocolError]:
        """The subscriptions an SSE stream asks for in its request (`pattern=`, each with
        the request's `filter=` expression and `expand=` names if any), each counted
        against the rate limit; BadRequest or RateLimited for the whole."""
        self._check_count(len(patterns))
        if patterns:
            self._charge(conn, len(patterns))
        items = [
            {"pattern": text, "snapshot": snapshot, "filter": filter, "expand": expand}
            for text in patterns
        ]
        return [_subscribe_item(item, i, since) for i, item in enumerate(items)]

    async def post(self, conn: Connection, body: Mapping[str, Any]) -> list[Frame]:
        """An SSE POST's items (`subscribe`, `unsubscribe`, `emit`, `publish` lists),
        carried out in that order, each counted as one message; their replies, in order.
        BadRequest or RateLimited for the whole POST."""
        lists = {kind: body.get(kind, []) for kind in POST_KINDS}
        if not all(isinstance(items, list) for items in lists.values()):
            raise BadRequest("subscribe, unsubscribe, emit and publish must be lists.")
        count = sum(len(items) for items in lists.values())
        self._check_count(count)
        self._charge(conn, max(1, count))
        subscribes = [_subscribe_item(item, i, None) for i, item in enumerate(lists["subscribe"])]
        replies = await self._subscribing.subscribe(conn, subscribes, replies_on_stream=False)
        for kind in POST_KINDS[1:]:
            for i, item in enumerate(lists[kind]):
                reply = await self._answer(conn, _post_item(kind, item, i, self._config))
                assert reply is not None
                replies.append(reply)
        return replies

    # -- the rate limit -------------------------------------------------------------

    def _rate_limit(self, conn: Connection, cost: int = 1) -> int:
        """Count `cost` messages against the connection's budget; 0 if they may go on,
        else the seconds to wait (and the connection is closed after MAX_REJECTED
        refusals in a row)."""
        window = conn.message_window
        if window is None:
            window = conn.message_window = self._message_limit.window()
        wait = window.retry_after(cost)
        if wait:
            self._broker.stats.rate_limited += 1
            conn.rejected += 1
            if conn.rejected > MAX_REJECTED:
                # What is queued goes out first: the rate_limited errors that explain this.
                conn.close(RATE_LIMITED_CLOSE, "too many requests", flush=True)
            return wait
        window.hit(cost)
        conn.rejected = 0
        return 0

    def _charge(self, conn: Connection, cost: int) -> None:
        wait = self._rate_limit(conn, cost)
        if wait:
            raise RateLimited(retry_after=wait)

    def _check_count(self, count: int) -> None:
        limit = self._config.max_subscriptions
        if count > limit:
            raise BadRequest(f"At most {limit} patterns in one request.")

    # -- carrying out one command ---------------------------------------------------

    async def _answer(self, conn: Connection, command: Command | ProtocolError) -> Frame | None:
        """The reply to a command that is not a subscribe (None for a pong)."""
        if isinstance(command, ProtocolError):
            return _error(command)
        if isinstance(command, Unsubscribe):
            async with conn.command_lock:  # not in the middle of another POST's subscribe
                self._subscribing.unsubscribe(conn, command.pattern)
            return protocol.unsubscribed(command.request_id, command.pattern.text)
        if isinstance(command, Emit):
            return await self._emit(conn, command)
        if isinstance(command, Publish):
            return await self._publish(conn, command)
        if isinstance(command, Ping):
            return protocol.pong()
        return None  # a pong: its arrival was the point

    def _spawn_emit(self, conn: Connection, command: Emit) -> None:
        """Over WebSocket: the handler runs beside the connection's other messages (pings
        go on meanwhile); its answer is sent when it comes."""

        running = _emits_of(conn)
        if len(running) >= MAX_EMITS_IN_FLIGHT:
            _send(conn, _too_many_emits(command))
            return

        async def answer() -> None:
            frame = await self._emit(conn, command)
            if frame["type"] == "error" or command.request_id is not None:
                _send(conn, frame)

        # Counted at once, so that a burst of emits meets the cap before any runs.
        task = asyncio.create_task(answer())
        running.add(task)
        task.add_done_callback(running.discard)

    async def _emit(self, conn: Connection, command: Emit) -> Frame:
        """The `ack` carrying the handler's answer, or the `error` instead; a few at a
        time per connection, whatever carried them."""
        running = _emits_of(conn)
        me = asyncio.current_task()
        if me not in running:
            if len(running) >= MAX_EMITS_IN_FLIGHT:
                return _too_many_emits(command)
            assert me is not None
            running.add(me)
        try:
            return await self._handler_answer(conn, command)
        finally:
            running.discard(me)

    async def _handler_answer(self, conn: Connection, command: Emit) -> Frame:
        request_id = command.request_id
        handler = self._handlers.get(command.name)
        if handler is None:
            message = f"no handler for the event {command.name!r}"
            return protocol.error(request_id, ErrorCode.BAD_REQUEST, message)
        result = await call_handler(handler, command.data, Sender(conn.id, conn.user), request_id)
        if isinstance(result, ProtocolError):
            return _error(result)
        frame = protocol.ack(request_id, result)
        if len(protocol.encode(frame)) > self._config.send_queue_bytes // 2:
            message = "the answer is larger than the connection may queue"
            return protocol.error(request_id, ErrorCode.INTERNAL_ERROR, message)
        return frame

    async def _publish(self, conn: Connection, command: Publish) -> Frame:
        """A browser's custom event on a channel: published if the write rule lets it,
        and acknowledged with its event id."""
        channel = self._channels.get(command.channel)
        try:
            allowed = channel is not None and channel.writable_by(conn.user)
        except Exception:  # app code: refuse, and say so in the log
            log.exception("realtime: the write rule of channel %r failed", command.channel)
            allowed = False
        if not allowed:
            message = f"no channel named {command.channel!r} that you may publish to"
            return protocol.error(command.request_id, ErrorCode.FORBIDDEN, message)
        too_big = _too_big_to_publish(command, self._config.max_publish_size)
        if too_big is not None:
            return too_big
        try:
            event = custom_event(
                command.name, command.data, collection=command.channel, user=public_user(conn.user)
            )
        except ValueError as error:  # data nested too deep for an event
            message = str(error).removeprefix("realtime_broadcast: ")
            return protocol.error(command.request_id, ErrorCode.BAD_REQUEST, message)
        event_id = await self._broker.publish_async(event)
        return protocol.ack(command.request_id, {"event_id": event_id})


def _too_big_to_publish(command: Publish, limit: int) -> Frame | None:
    """`message_too_big` for a publication whose data takes more than `limit` bytes as
    compact JSON (`realtime.max_publish_size`): what browsers publish is kept in the
    history for resuming, so it has a budget of its own, below a message's."""
    text = protocol.encode(command.data)
    # A character is at least one byte: no need to encode what is already too long.
    if len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit:
        message = f"the data to publish exceeds {limit} bytes"
        return protocol.error(command.request_id, ErrorCode.MESSAGE_TOO_BIG, message)
    return None


def _send(conn: Connection, frame: Frame) -> None:
    conn.send(protocol.encode(frame))


def _error(error: ProtocolError, retry_after: float | None = None) -> Frame:
    return protocol.error(error.request_id, error.code, error.message, retry_after, **error.extra)


def _emits_of(conn: Connection) -> set[asyncio.Task[Any]]:
    if conn.emits is None:
        conn.emits = set()
    return conn.emits


def _too_many_emits(command: Emit) -> Frame:
    message = "too many events awaiting an answer"
    return protocol.error(command.request_id, ErrorCode.RATE_LIMITED, message, 1)


# -- SSE items: what the WebSocket's frames say, as query parameters and POST lists ----


def _item_id(item: Any, index: int) -> Any:
    """The id a reply carries: the item's own, if it is a valid one, else its position."""
    request_id = item.get("id", index) if isinstance(item, dict) else index
    valid = isinstance(request_id, int | str) and not isinstance(request_id, bool)
    return request_id if valid and len(str(request_id)) <= 64 else index


def _subscribe_item(item: Any, index: int, since: str | None) -> Subscribe | ProtocolError:
    """A subscription from a query parameter (a pattern) or a POST item (an object)."""
    if isinstance(item, str):
        item = {"pattern": item}
    request_id = _item_id(item, index)
    if not isinstance(item, dict):
        return ProtocolError(
            ErrorCode.BAD_REQUEST, "each subscription is a pattern or object", request_id
        )
    if since is not None and item.get("since") is None:
        item = {**item, "since": since}
    try:
        return protocol.parse_subscribe(item, request_id)
    except ProtocolError as error:
        return error


def _post_item(kind: str, item: Any, index: int, config: RealtimeConfig) -> Command | ProtocolError:
    """An `unsubscribe`, `emit` or `publish` item of an SSE POST, as the command the
    WebSocket frame would be."""
    request_id = _item_id(item, index)
    if kind == "unsubscribe":
        text = item.get("pattern") if isinstance(item, dict) else item
        try:
            return Unsubscribe(request_id, parse_pattern(text))
        except InvalidPattern as error:
            return ProtocolError(ErrorCode.INVALID_PATTERN, str(error), request_id)
    if not isinstance(item, dict):
        return ProtocolError(ErrorCode.BAD_REQUEST, f"each {kind} is an object", request_id)
    limit = config.max_message_size  # as for a WebSocket frame
    if len(protocol.encode(item)) > limit:
        return ProtocolError(ErrorCode.MESSAGE_TOO_BIG, f"{kind} exceeds {limit} bytes", request_id)
    try:
        if kind == "emit":
            return protocol.parse_emit(item, request_id)
        return protocol.parse_publish(item, request_id)
    except ProtocolError as error:
        return ProtocolError(error.code, error.message, request_id)
