"""The Redis backend: one order and one history for every process, in a Redis stream.

Publishing runs one Lua script, so that giving offsets, keeping the history and
remembering keys is one atomic step for the whole cluster:

- `<prefix>epoch` names the current epoch. A Redis that lost its data (restarted
  without persistence, flushed) has none: the next publish makes a new one and offsets
  start again at 1, so ids given before are refused, never answered with other events.
- `<prefix>offset` is the last offset given; an event's entry in the stream
  `<prefix>stream:<epoch>` has the id `0-<offset>`, so the stream's order is the offset's.
- `<prefix>key:<epoch>:<key>` remembers, for DEDUP_SECONDS, the offset an event key was
  published at: a publish retried after a lost reply returns it instead of a second copy.

Each process reads the stream from where it started (XREAD, blocking) and delivers what
it reads, its own events included, in the stream's order. The stream is trimmed to
`history_size` entries, or MIN_STREAM_LENGTH if that is more, so that a reader a little
behind still finds what it has not read.

One Redis server, reached by its URL; not Sentinel (no such URL here) nor Redis Cluster,
whose slots would split the keys the script writes together.

Presence and connection counts are shared too (redis_shared.py): their joins and leaves
are events of the same stream. A process starts reading where it read who is here, in
one script; after a new epoch or a gap it reads who is here again, and hands that list
over (`shared.on_reset`) where it stands in the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ....database_url import redacted
from . import BackendUnavailable, Deliver, Position, UnpublishableEvent
from .redis_shared import RedisShared

if TYPE_CHECKING:
    from ...events import Event
    from ..codec import EventCodec

__all__ = ["DEDUP_SECONDS", "MIN_STREAM_LENGTH", "RedisBackend", "check_reachable"]

log = logging.getLogger("runtime.realtime")

DEFAULT_PREFIX = "runtime:realtime:"
MIN_STREAM_LENGTH = 10_000
DEDUP_SECONDS = 600  # how long a publish may be retried and still be recognised
# A reader wakes at least this often: to notice a new epoch, or that it is to stop (a
# read cancelled inside redis-py can leave its connection half released).
READ_BLOCK_MS = 250
READ_COUNT = 512
RETRY_DELAYS = (0.05, 5.0)
TIMEOUT = 5.0  # seconds a command may take before Redis counts as unreachable

# KEYS: epoch, offset, key prefix. ARGV: a new epoch (used only if there is none), the
# stream's length, the dedup seconds, then (key, payload) per event. Returns the epoch
# and, per event, its offset and 1 if it had been published before (else 0).
_PUBLISH = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
  redis.call('SET', KEYS[2], 0)
end
local stream = KEYS[3] .. 'stream:' .. epoch
local seen_prefix = KEYS[3] .. 'key:' .. epoch .. ':'
local out = {epoch}
for i = 4, #ARGV, 2 do
  local seen_key = seen_prefix .. ARGV[i]
  local seen = redis.call('GET', seen_key)
  if seen then
    table.insert(out, tonumber(seen))
    table.insert(out, 1)
  else
    local offset = redis.call('INCR', KEYS[2])
    redis.call('XADD', stream, 'MAXLEN', ARGV[2], '0-' .. offset, 'e', ARGV[i + 1])
    redis.call('SET', seen_key, offset, 'EX', ARGV[3])
    table.insert(out, offset)
    table.insert(out, 0)
  end
end
return out
"""

# KEYS: epoch, offset. ARGV: a new epoch, made current if there is none. Returns the
# epoch and the last offset.
_POSITION = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SET', KEYS[2], 0)
end
return {redis.call('GET', KEYS[1]), tonumber(redis.call('GET', KEYS[2]) or '0')}
"""


class RedisBackend:
    def __init__(
        self,
        url: str,
        codec: EventCodec[Event],
        *,
        history_size: int,
        prefix: str = DEFAULT_PREFIX,
        min_length: int = MIN_STREAM_LENGTH,
    ) -> None:
        self._url = url
        self._codec = codec
        self._length = max(history_size, min_length)
        self._prefix = prefix
        self._keys = [f"{prefix}epoch", f"{prefix}offset", prefix]
        self._client: aioredis.Redis | None = None
        self._listener: aioredis.Redis | None = None
        self._deliver: Deliver | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stopping = False
        self.shared = RedisShared(lambda: self._redis, codec, self._keys, length=self._length)
        # Who is here as of a position the reader has not reached yet (after a gap).
        self._reset_at: tuple[Position, list[Event]] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, deliver: Deliver) -> Position:
        # Commands share a pool; the reader, mostly blocked in XREAD, has its own.
        # RESP2: the replies' shapes below (RESP3 answers XREAD with a map). Timeouts: a
        # Redis that stopped answering is an outage, not a publish that waits for ever.
        client = aioredis.Redis.from_url(
            self._url, protocol=2, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
        )
        listener = aioredis.Redis.from_url(
            self._url,
            protocol=2,
            socket_timeout=TIMEOUT + READ_BLOCK_MS / 1000,
            socket_connect_timeout=TIMEOUT,
        )
        try:
            await self.shared.renew(client)  # the dead forgotten, so as not to be listed
            position, here = await self.shared.snapshot(client)
            await listener.ping()
        except (RedisError, OSError) as error:
            await _close(client, listener)
            raise BackendUnavailable(f"cannot reach {redacted(self._url)}: {error}") from error
        self._client, self._listener = client, listener
        self._deliver = deliver
        self._stopping = False
        self._reset_at = None
        self.shared.reset(here)
        self._reader = asyncio.create_task(self._read_from(position))
        return position

    async def stop(self) -> None:
        reader, self._reader = self._reader, None
        self._stopping = True
        if reader is not None:
            try:  # it stops after its current read (see READ_BLOCK_MS)
                await asyncio.wait_for(asyncio.shield(reader), 4 * READ_BLOCK_MS / 1000)
            except TimeoutError:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        client, listener = self._client, self._listener
        self._client = self._listener = None
        self._deliver = None
        await _close(client, listener)

    # -- publishing --------------------------------------------------------------------

    async def publish(self, events: Sequence[Event]) -> list[Event]:
        if not events:
            return []
        args: list[Any] = [secrets.token_hex(4), self._length, DEDUP_SECONDS]
        for index, event in enumerate(events):
            try:
                payload = self._codec.encode(_unplaced(event))
            except (TypeError, ValueError) as error:
                raise UnpublishableEvent(index, error) from error
            args += [event.key or secrets.token_hex(8), payload]
        try:
            reply = await self._redis.eval(_PUBLISH, len(self._keys), *self._keys, *args)
        except (RedisError, OSError) as error:
            raise BackendUnavailable(f"Redis: {error}") from error
        epoch = _text(reply[0])
        offsets = reply[1::2]
        return [
            event.published(f"{epoch}-{offset}", int(offset))
            for event, offset in zip(events, offsets, strict=True)
        ]

    async def position(self) -> Position:
        try:
            return await self._position(self._redis)
        except (RedisError, OSError) as error:
            raise BackendUnavailable(f"Redis: {error}") from error

    async def read_after(self, event_id: str, limit: int) -> list[Event] | None:
        since = Position.parse(event_id)
        if since is None:
            return None
        newest = await self.position()
        if since.epoch != newest.epoch or since.offset > newest.offset:
            return None
        if newest.offset - since.offset > limit:
            return None
        if since.offset == newest.offset:
            return []
        try:
            entries: Any = await self._redis.xrange(
                self._stream(since.epoch), f"({_entry_id(since.offset)}", "+", count=limit
            )
        except (RedisError, OSError) as error:
            raise BackendUnavailable(f"Redis: {error}") from error
        events = [self._event(since.epoch, entry) for entry in entries]
        if not events or events[0].seq != since.offset + 1:
            return None  # the events after `since` have left the stream
        return [event for event in events if event.seq <= newest.offset]

    # -- reading (each process delivers the stream, in its order) ----------------------

    async def _read_from(self, start: Position) -> None:
        """Deliver every entry after `start` until stopped; through outages (logged
        once, retried with backoff) and into a new epoch."""
        epoch, offset = start
        first, longest = RETRY_DELAYS
        delay, down = first, False
        while not self._stopping:
            try:
                epoch, offset = await self._read_once(epoch, offset)
            except (RedisError, OSError) as error:
                if not down:
                    log.error("realtime: cannot read the Redis stream (%s); retrying", error)
                down = True
                await asyncio.sleep(delay)  # cancelled by stop() if long
                delay = min(delay * 2, longest)
                continue
            if down:
                log.warning("realtime: reading the Redis stream again")
            delay, down = first, False

    async def _read_once(self, epoch: str, offset: int) -> tuple[str, int]:
        stream = self._stream(epoch)
        assert self._listener is not None
        reply: Any = await self._listener.xread(
            {stream: _entry_id(offset)}, count=READ_COUNT, block=READ_BLOCK_MS
        )
        if not reply:
            current = await self._position(self._listener)
            if current.epoch != epoch:
                log.warning("realtime: Redis lost the history; a new epoch %s", current.epoch)
                await self._read_who_is_here(current.epoch, 0)
                return current.epoch, 0
            return epoch, offset
        events = [self._event(epoch, entry) for entry in reply[0][1]]
        if events[0].seq != offset + 1:
            log.error(
                "realtime: events %d to %d left the Redis stream before this process read "
                "them; its clients are told to resume",
                offset + 1,
                events[0].seq - 1,
            )
            await self._read_who_is_here(epoch, offset)
        self._deliver_around_reset(events)
        return epoch, events[-1].seq

    async def _read_who_is_here(self, epoch: str, offset: int) -> None:
        """Presence events were missed: who is here, read now, replaces what this
        process knew once the reader reaches the position it was read at."""
        if self.shared.on_reset is None:
            return
        assert self._listener is not None
        at, here = await self.shared.snapshot(self._listener)
        if at.epoch == epoch and at.offset <= offset:
            self.shared.reset(here)  # where the reader stands already
        else:
            self._reset_at = (at, here)

    def _deliver_around_reset(self, events: list[Event]) -> None:
        """Deliver `events`, replacing who is here where it was read again, if among
        them."""
        reset_at, deliver = self._reset_at, self._deliver
        if deliver is None:
            return
        if reset_at is None or Position.of(events[0]).epoch != reset_at[0].epoch:
            deliver(events)
            return
        at, here = reset_at
        before = [event for event in events if event.seq <= at.offset]
        if before:
            deliver(before)
        if events[-1].seq >= at.offset:
            self._reset_at = None
            self.shared.reset(here)
            after = events[len(before) :]
            if after:
                deliver(after)

    # -- helpers -----------------------------------------------------------------------

    @property
    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise BackendUnavailable("the Redis backend is not started")
        return self._client

    def _stream(self, epoch: str) -> str:
        return f"{self._prefix}stream:{epoch}"

    async def _position(self, client: aioredis.Redis) -> Position:
        epoch, offset = await client.eval(_POSITION, 2, *self._keys[:2], secrets.token_hex(4))
        return Position(_text(epoch), int(offset))

    def _event(self, epoch: str, entry: tuple[bytes, dict[bytes, bytes]]) -> Event:
        entry_id, fields = entry
        offset = int(_text(entry_id).partition("-")[2])
        return self._codec.decode(fields[b"e"]).published(f"{epoch}-{offset}", offset)


def check_reachable(url: str, timeout: float = 5.0) -> None:
    """BackendUnavailable, naming the URL (not its password), unless Redis answers."""
    try:
        with redis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        ) as client:
            client.ping()
    except (RedisError, OSError, ValueError) as error:
        raise BackendUnavailable(f"cannot reach {redacted(url)}: {error}") from None


async def _close(*clients: aioredis.Redis | None) -> None:
    for client in clients:
        if client is not None:
            await client.aclose()


def _unplaced(event: Event) -> Event:
    """The event as it travels: its place comes from the stream entry's id."""
    return event.published("", 0) if event.id else event


def _entry_id(offset: int) -> str:
    return f"0-{offset}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
