"""An SSE POST passed on, through Redis, to the process that holds its stream (several
processes on one Redis: `realtime.broker = "redis://…"`).

A stream lives in one process, and behind a proxy its POSTs reach any. A process that
gets a POST for a stream it does not hold passes it on to the one that does, which
carries it out as if it had come to it (stream_posts.py: the same checks, rate limit
and caps) and sends back its answer, status included. The POST's origin and session are
read where it arrived, which has its headers and cookies; the holder compares that
session, and the POST's stream key, with its stream's. Redis is the only way between
processes, and only server processes write these keys (under `runtime:realtime:sse:`):

- `conn:<connection id>`: the process that holds that SSE stream (no other transport's
  connection is ever written); set as the stream opens, deleted as it ends, and kept
  alive for OWNER_TTL seconds by a refresh every REFRESH seconds, so that the streams
  of a process that died are forgotten soon.
- `inbox:<process id>`: the ids of the requests for that process, at most MAX_INBOX,
  read with BLPOP.
- `request:<request id>`: a request, kept while its sender waits (FORWARD_TIMEOUT):
  one its sender gave up on is not carried out.
- `reply:<request id>`: its answer, read with BLPOP by the sender, kept REPLY_TTL.

Bounded: a process waits on at most MAX_FORWARDS answers and carries out at most
MAX_SERVED forwarded requests at once; past those, `rate_limited`. A Redis that cannot
be reached, or a holder that does not answer within FORWARD_TIMEOUT, is `unavailable`
(503, Retry-After); a stream that no process holds is the 404 one process answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ...errors import (
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    error_body,
)
from ..supervisor import supervise
from .stream_posts import NO_SUCH_STREAM, change_stream, held_stream

if TYPE_CHECKING:
    from quart import Quart

    from ..connections.connection import Connection
    from ..connections.index import ConnectionIndex
    from .commands import CommandRouter

__all__ = ["FORWARD_TIMEOUT", "MAX_FORWARDS", "MAX_SERVED", "OWNER_TTL", "PostForwarding"]

log = logging.getLogger("runtime.realtime")

PREFIX = "runtime:realtime:sse:"
OWNER_TTL = 30  # seconds a stream's entry outlives its process's last refresh
REFRESH = 10.0
FORWARD_TIMEOUT = 10.0  # seconds a POST waits for the holder's answer
REPLY_TTL = 30
MAX_FORWARDS = 64  # answers a process awaits at once
MAX_SERVED = 64  # forwarded requests a process carries out at once
MAX_INBOX = 256  # requests waiting for one process
TIMEOUT = 5.0  # seconds a Redis command may take (as for the broker's backend)
INBOX_BLOCK = 0.25  # a reader wakes this often, to notice that it is to stop
BUSY_RETRY = 1  # Retry-After, for a POST refused for the bounds above
DOWN_RETRY = 5  # and for Redis out of reach, or a holder that did not answer
REFRESH_BATCH = 500
MAX_DELETES = 10_000  # entries waiting to be deleted; past that, they just expire
_CONNECTION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what Connection ids are made of

# KEYS: the stream's entry. ARGV: the prefix, this process's id, the request's id, the
# request, its lifetime (ms), MAX_INBOX. Returns 1 (sent), 0 (no other process holds
# the stream) or -1 (the holder's inbox is full).
_SEND = """
local holder = redis.call('GET', KEYS[1])
if not holder or holder == ARGV[2] then return 0 end
local inbox = ARGV[1] .. 'inbox:' .. holder
if redis.call('LLEN', inbox) >= tonumber(ARGV[6]) then return -1 end
redis.call('SET', ARGV[1] .. 'request:' .. ARGV[3], ARGV[4], 'PX', ARGV[5])
redis.call('RPUSH', inbox, ARGV[3])
redis.call('PEXPIRE', inbox, ARGV[5])
return 1
"""


class PostForwarding:
    """This process's side of forwarding: the streams it holds, known in Redis; the
    POSTs for other processes' streams, sent on; the POSTs sent to it, carried out."""

    def __init__(
        self,
        app: Quart,
        url: str,
        connections: ConnectionIndex,
        router: CommandRouter,
        restarts: dict[str, int],
        *,
        prefix: str = PREFIX,
    ) -> None:
        self._app = app
        self._url = url
        self._connections = connections
        self._router = router
        self._restarts = restarts
        self._prefix = prefix
        self.process_id = secrets.token_hex(8)
        self._held: set[str] = set()  # ids of the SSE streams held here
        self._client: aioredis.Redis | None = None  # commands
        self._blocking: aioredis.Redis | None = None  # BLPOPs: answers, and the inbox
        self._tasks: list[asyncio.Task[None]] = []
        self._ended: set[str] = set()  # ids of the streams whose entries are to go
        self._deleter: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[None]] = set()  # requests being carried out
        self._serving = asyncio.Semaphore(MAX_SERVED)
        self._waiting = 0  # POSTs sent on, awaiting their answer
        self._down = False  # Redis out of reach: said once in the log

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        # RESP2 and timeouts as the broker's backend has them; the blocking pool has a
        # connection for each answer awaited and one for the inbox.
        self._client = aioredis.Redis.from_url(
            self._url, protocol=2, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
        )
        self._blocking = aioredis.Redis.from_url(
            self._url,
            protocol=2,
            socket_timeout=TIMEOUT + FORWARD_TIMEOUT,
            socket_connect_timeout=TIMEOUT,
            max_connections=MAX_FORWARDS + 1,
        )
        self._serving = asyncio.Semaphore(MAX_SERVED)
        self._tasks = [
            asyncio.create_task(
                supervise("sse-forwarding-inbox", self._read_inbox, self._restarts)
            ),
            asyncio.create_task(supervise("sse-forwarding-refresh", self._refresh, self._restarts)),
        ]

    async def stop(self) -> None:
        deleter, self._deleter = self._deleter, None
        if deleter is not None:  # the streams that closed as the server stops
            await asyncio.wait([deleter], timeout=TIMEOUT)
        tasks = [*self._tasks, *self._chores, *([deleter] if deleter else [])]
        self._tasks = []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client, blocking = self._client, self._blocking
        self._client = self._blocking = None
        # The streams still open, and those whose entries were still to go: at once,
        # rather than when they expire, their POSTs elsewhere answer 404.
        gone = [self._key("conn", id) for id in self._held | self._ended]
        self._ended.clear()
        if client is not None and gone:
            with contextlib.suppress(RedisError, OSError):
                for start in range(0, len(gone), REFRESH_BATCH):
                    await client.delete(*gone[start : start + REFRESH_BATCH])
        for redis_client in (client, blocking):
            if redis_client is not None:
                await redis_client.aclose()

    # -- the streams held here ---------------------------------------------------------

    async def hold(self, conn: Connection) -> None:
        """`conn`, an SSE stream, is held here: its POSTs may arrive anywhere. Without
        Redis for now, the next refresh says so."""
        self._held.add(conn.id)
        if self._client is None:
            return
        try:
            await self._client.set(self._key("conn", conn.id), self.process_id, ex=OWNER_TTL)
        except (RedisError, OSError) as error:
            self._unreachable(error)

    def release(self, conn: Connection) -> None:
        """`conn` has ended: its entry goes (or expires, if Redis cannot be told now)."""
        if conn.id not in self._held:
            return
        self._held.discard(conn.id)
        if self._client is None or len(self._ended) >= MAX_DELETES:
            return  # its entry expires
        self._ended.add(conn.id)
        if self._deleter is None or self._deleter.done():
            self._deleter = asyncio.create_task(self._delete_ended())

    async def _delete_ended(self) -> None:
        """Delete the entries of the streams that ended, a batch per command."""
        while self._ended:
            batch = [self._ended.pop() for _ in range(min(len(self._ended), REFRESH_BATCH))]
            try:
                await self._redis.delete(*(self._key("conn", id) for id in batch))
            except (RedisError, OSError):
                return  # they expire

    async def _refresh(self) -> None:
        """Keep the entries of the streams held here, and write those Redis missed."""
        while True:
            await asyncio.sleep(REFRESH)
            held = list(self._held)
            try:
                for start in range(0, len(held), REFRESH_BATCH):
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for connection_id in held[start : start + REFRESH_BATCH]:
                            pipe.set(
                                self._key("conn", connection_id), self.process_id, ex=OWNER_TTL
                            )
                        await pipe.execute()
            except (RedisError, OSError) as error:
                self._unreachable(error)
            else:
                self._reachable()

    # -- sending a POST on -------------------------------------------------------------

    async def forward(
        self, connection_id: str, session_hash: str | None, body: Mapping[str, Any]
    ) -> str:
        """The body of the answer of the process that holds the stream, to a POST that
        arrived here with that session; its error answers raised as the same ApiError.
        NotFound if no process holds that stream."""
        if not _CONNECTION_ID.fullmatch(connection_id):
            raise NotFound(NO_SUCH_STREAM)
        if self._waiting >= MAX_FORWARDS:
            raise RateLimited("Too many requests under way; try again.", retry_after=BUSY_RETRY)
        request_id = secrets.token_urlsafe(16)
        request = json.dumps(
            {"connection_id": connection_id, "session_hash": session_hash, "body": body},
            separators=(",", ":"),
        )
        self._waiting += 1
        try:
            sent = await self._redis.eval(
                _SEND,
                1,
                self._key("conn", connection_id),
                self._prefix,
                self.process_id,
                request_id,
                request,
                int(FORWARD_TIMEOUT * 1000),
                MAX_INBOX,
            )
            if sent == 0:
                raise NotFound(NO_SUCH_STREAM)
            if sent < 0:
                raise RateLimited("Too many requests under way; try again.", retry_after=BUSY_RETRY)
            popped = await self._waiter.blpop(
                [self._key("reply", request_id)], timeout=FORWARD_TIMEOUT
            )
        except (RedisError, OSError) as error:
            self._unreachable(error)
            raise Unavailable(
                "The stream's server cannot be reached now; try again.", retry_after=DOWN_RETRY
            ) from None
        finally:
            self._waiting -= 1
        if popped is None:
            raise Unavailable(
                "The server that holds this stream did not answer in time.",
                retry_after=DOWN_RETRY,
            )
        return _answer(popped[1])

    # -- carrying out the POSTs sent here ----------------------------------------------

    async def _read_inbox(self) -> None:
        """Take the requests sent to this process, a few at a time."""
        inbox = self._key("inbox", self.process_id)
        delay = 0.05
        while True:
            await self._serving.acquire()
            try:
                popped = await self._waiter.blpop([inbox], timeout=INBOX_BLOCK)
            except (RedisError, OSError) as error:
                self._serving.release()
                self._unreachable(error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, DOWN_RETRY)
                continue
            except BaseException:
                self._serving.release()
                raise
            delay = 0.05
            self._reachable()
            if popped is None:
                self._serving.release()
                continue
            self._spawn(self._serve(_text(popped[1])), self._serving.release)

    async def _serve(self, request_id: str) -> None:
        try:
            request = await self._redis.getdel(self._key("request", request_id))
            if request is None:  # its sender gave up waiting
                return
            answer = await self._carry_out(request)
            reply = self._key("reply", request_id)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(reply, answer)
                pipe.expire(reply, REPLY_TTL)
                await pipe.execute()
        except (RedisError, OSError) as error:
            self._unreachable(error)  # its sender answers `unavailable`

    async def _carry_out(self, raw: bytes | str) -> str:
        """The answer to a request, as the POST's status and body (or error)."""
        try:
            request = json.loads(raw)
            async with self._app.app_context():  # as a POST's handlers have one
                conn = held_stream(self._connections, request["connection_id"])
                body = await change_stream(
                    self._router, conn, request["session_hash"], request["body"]
                )
        except ApiError as error:
            answer = {
                "status": error.status,
                **error_body(error.code, error.message, **error.extra),
            }
            return json.dumps(answer)
        except Exception:  # as the app's error handler would: logged, a 500
            log.exception("realtime: an SSE POST forwarded from another process failed")
            return json.dumps(
                {"status": 500, **error_body("internal_error", "Internal server error.")}
            )
        return json.dumps({"status": 200, "body": body})

    # -- helpers -----------------------------------------------------------------------

    @property
    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise RedisError("not started")
        return self._client

    @property
    def _waiter(self) -> aioredis.Redis:
        if self._blocking is None:
            raise RedisError("not started")
        return self._blocking

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    def _spawn(
        self, work: Coroutine[Any, Any, None], done: Callable[[], None] | None = None
    ) -> None:
        task = asyncio.create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)
        if done is not None:
            task.add_done_callback(lambda _: done())

    def _unreachable(self, error: Exception) -> None:
        if not self._down:
            log.error("realtime: SSE POSTs cannot be forwarded: Redis: %s", error)
        self._down = True

    def _reachable(self) -> None:
        if self._down:
            log.warning("realtime: SSE POSTs are forwarded again")
        self._down = False


# What an error answer may be, by its code; any other is a 500.
_ERRORS: dict[str, type[ApiError]] = {
    cls.code: cls for cls in (BadRequest, Forbidden, NotFound, PayloadTooLarge)
}


def _answer(raw: bytes | str) -> str:
    """The answer's body, or its error raised."""
    answer = json.loads(raw)
    if answer["status"] == 200:
        body: str = answer["body"]
        return body
    error = dict(answer["error"])
    code, message = error.pop("code"), error.pop("message")
    if code == "rate_limited":
        raise RateLimited(message, retry_after=int(error["retry_after"]))
    if code == "unavailable":
        raise Unavailable(message, retry_after=int(error["retry_after"]))
    raise _ERRORS.get(code, ApiError)(message, **error)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
