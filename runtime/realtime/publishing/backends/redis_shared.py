"""What several processes on one Redis share besides the events: who is here (presence)
and how many connections each user has, with each process's liveness.

Each process has an id and a key `<prefix>alive:<id>` that it renews every `interval`
seconds and that expires after `expiry`; `<prefix>processes` lists the ids. Its part of
the shared state is kept under its id:

- `<prefix>presence:of:<id>`: the (topic, user) pairs it has at least one connection
  for. `<prefix>presence:count` counts, per pair, the processes that have it; the encoded
  join and leave events of each pair present are in `<prefix>presence:join` and
  `<prefix>presence:leave`.
- `<prefix>connections:<id>`: its connections per user, for `max_connections_per_user`.

The decision and its event are one step. Every change runs a Lua script that updates
the counts and, when a pair's count goes from 0 to 1 (its first tab anywhere) or back to
0 (its last), appends the join or leave to the event stream, with the backend's epoch
and offset conventions (see redis_streams.py). Redis runs scripts one at a time, so two
processes deciding at once are ordered, and the stream holds their events in the order
of their decisions: a `join` and a `leave` can never cross. A process's own change is
idempotent (a set's add or remove), so retrying one after a lost reply does nothing
twice.

A process whose key expired is dead: the next process to renew its own key removes the
dead one's pairs in the same script, publishing a leave for each pair it was the last
holder of, and its connection counts; a second sweeper finds nothing left. A process
that was swept while alive (stalled, or cut off from Redis) learns it at its next
renewal and sends its whole state again. Connection counts of a process whose key has
expired stop counting at once, swept or not.

The state as of a position: `snapshot()` reads the position and who is here in one
script, so a process that starts lists everyone present where its reading begins.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import Position

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from ...events import Event
    from ..codec import EventCodec

__all__ = ["PresenceChange", "RedisShared", "liveness", "user_key"]

MAX_INTERVAL = 5.0  # seconds between renewals at most, whatever realtime.heartbeat is
MIN_EXPIRY = 3.0  # seconds: a process is dead after this long without renewing, at least


def liveness(heartbeat: float) -> tuple[float, float]:
    """(interval, expiry) in seconds for a process whose `realtime.heartbeat` is
    `heartbeat`: it renews every interval; it is dead after `expiry` without renewal,
    and swept within one more interval by a process alive."""
    interval = min(heartbeat, MAX_INTERVAL)
    return interval, max(3 * interval, MIN_EXPIRY)


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """This process now has `user_id` on `topic` (`join` and `leave` are the events to
    publish for them when theirs is the first or last tab anywhere), or no longer has
    them (both None)."""

    topic: str
    user_id: Any  # JSON-safe: the public user's id
    join: Event | None = None
    leave: Event | None = None


# Shared by the scripts. KEYS: epoch, offset, the prefix. ARGV[1]: a new epoch (used
# only if there is none), ARGV[2]: the stream's length, ARGV[3]: this process's id.
_LIB = """
local prefix = KEYS[3]
local processes = prefix .. 'processes'
local counts = prefix .. 'presence:count'
local joins = prefix .. 'presence:join'
local leaves = prefix .. 'presence:leave'

local function append(payload)
  local epoch = redis.call('GET', KEYS[1])
  if not epoch then
    epoch = ARGV[1]
    redis.call('SET', KEYS[1], epoch)
    redis.call('SET', KEYS[2], 0)
  end
  local offset = redis.call('INCR', KEYS[2])
  redis.call('XADD', prefix .. 'stream:' .. epoch, 'MAXLEN', ARGV[2], '0-' .. offset,
             'e', payload)
end

local function arrive(process, pair, join, leave)
  if redis.call('SADD', prefix .. 'presence:of:' .. process, pair) == 1 then
    if redis.call('HINCRBY', counts, pair, 1) == 1 then
      redis.call('HSET', joins, pair, join)
      redis.call('HSET', leaves, pair, leave)
      append(join)
    end
  end
end

local function depart(process, pair)
  if redis.call('SREM', prefix .. 'presence:of:' .. process, pair) == 1 then
    if redis.call('HINCRBY', counts, pair, -1) <= 0 then
      local leave = redis.call('HGET', leaves, pair)
      redis.call('HDEL', counts, pair)
      redis.call('HDEL', joins, pair)
      redis.call('HDEL', leaves, pair)
      if leave then append(leave) end
    end
  end
end

local function forget(process)
  for _, pair in ipairs(redis.call('SMEMBERS', prefix .. 'presence:of:' .. process)) do
    depart(process, pair)
  end
  redis.call('DEL', prefix .. 'connections:' .. process, prefix .. 'alive:' .. process)
  redis.call('SREM', processes, process)
end

local function registered()
  return redis.call('SISMEMBER', processes, ARGV[3]) == 1
end
"""

# ARGV[4]: the expiry in ms. Renews this process, forgets the dead ones. Returns 1 if
# this process was registered (0: new, or swept: its state must be sent again).
_RENEW = (
    _LIB
    + """
local known = registered() and 1 or 0
redis.call('SADD', processes, ARGV[3])
redis.call('SET', prefix .. 'alive:' .. ARGV[3], 1, 'PX', ARGV[4])
for _, process in ipairs(redis.call('SMEMBERS', processes)) do
  if process ~= ARGV[3] and redis.call('EXISTS', prefix .. 'alive:' .. process) == 0 then
    forget(process)
  end
end
return known
"""
)

# ARGV[4...]: (pair, join, leave) per change; an empty join: the pair goes. Returns 0,
# changing nothing, if this process is not registered.
_PRESENCE = (
    _LIB
    + """
if not registered() then return 0 end
for i = 4, #ARGV, 3 do
  if ARGV[i + 1] == '' then
    depart(ARGV[3], ARGV[i])
  else
    arrive(ARGV[3], ARGV[i], ARGV[i + 1], ARGV[i + 2])
  end
end
return 1
"""
)

# ARGV[4...]: (user, connections) per user; 0 connections: the user goes.
_CONNECTIONS = (
    _LIB
    + """
if not registered() then return 0 end
local mine = prefix .. 'connections:' .. ARGV[3]
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] == '0' then
    redis.call('HDEL', mine, ARGV[i])
  else
    redis.call('HSET', mine, ARGV[i], ARGV[i + 1])
  end
end
return 1
"""
)

# ARGV[4]: a user, ARGV[5]: their connections here with the new one, ARGV[6]: the cap.
# Returns 1 (admitted, and counted here), 0 (one too many) or -1 (not registered).
_ADMIT = (
    _LIB
    + """
if not registered() then return -1 end
local total = tonumber(ARGV[5])
for _, process in ipairs(redis.call('SMEMBERS', processes)) do
  if process ~= ARGV[3] and redis.call('EXISTS', prefix .. 'alive:' .. process) == 1 then
    local theirs = redis.call('HGET', prefix .. 'connections:' .. process, ARGV[4])
    total = total + tonumber(theirs or '0')
  end
end
if total > tonumber(ARGV[6]) then return 0 end
redis.call('HSET', prefix .. 'connections:' .. ARGV[3], ARGV[4], ARGV[5])
return 1
"""
)

_LEAVE = _LIB + "forget(ARGV[3])\nreturn 1\n"

# The position (made, as _POSITION does, if there is none) and who is here, at once.
_SNAPSHOT = (
    _LIB
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SET', KEYS[2], 0)
end
return {redis.call('GET', KEYS[1]), tonumber(redis.call('GET', KEYS[2]) or '0'),
        redis.call('HVALS', joins)}
"""
)


class RedisShared:
    """This process's part of the shared presence and connection counts, by script.
    Calls raise what the client raises (RedisError, OSError): the caller decides."""

    def __init__(
        self,
        client: Callable[[], aioredis.Redis],
        codec: EventCodec[Event],
        keys: Sequence[str],
        *,
        length: int,
    ) -> None:
        self.process = secrets.token_hex(8)
        self._client = client  # the backend's, while it runs
        self._codec = codec
        self._keys = list(keys)  # epoch, offset, prefix
        self._length = length
        self.expiry = liveness(25.0)[1]  # seconds; the broker sets its own (see liveness)
        # Who is here has changed under this process (a new epoch, a gap it did not
        # read): the joins of everyone here, as of the position it reads on from.
        self.on_reset: Callable[[list[Event]], None] | None = None

    async def renew(self, client: aioredis.Redis | None = None) -> bool:
        """Renew this process and forget the dead; False if it was not registered (it
        is now, and must send its state again)."""
        expiry_ms = int(self.expiry * 1000)
        return bool(await self._run(_RENEW, expiry_ms, client=client))

    async def change_presence(self, changes: Sequence[PresenceChange]) -> bool:
        """Apply this process's presence changes; False (nothing applied) if it is not
        registered."""
        args: list[Any] = []
        for change in changes:
            pair = _pair(change.topic, change.user_id)
            if change.join is None or change.leave is None:
                args += [pair, "", ""]
            else:
                args += [pair, self._codec.encode(change.join), self._codec.encode(change.leave)]
        return not args or bool(await self._run(_PRESENCE, *args))

    async def set_connections(self, counts: dict[str, int]) -> bool:
        """Set this process's connections per user (by `user_key`); False if it is not
        registered."""
        args: list[Any] = []
        for user, count in counts.items():
            args += [user, count]
        return not args or bool(await self._run(_CONNECTIONS, *args))

    async def admit(self, user: str, here: int, cap: int) -> bool | None:
        """Whether a user with `here` connections on this process, the new one
        included, stays within `cap` on all processes alive (then it is counted); None
        if this process is not registered."""
        answer = int(await self._run(_ADMIT, user, here, cap))
        return None if answer < 0 else answer == 1

    async def leave(self) -> None:
        """This process stops: its members leave where it was their last process."""
        await self._run(_LEAVE)

    async def snapshot(self, client: aioredis.Redis) -> tuple[Position, list[Event]]:
        """The newest position and the joins of everyone here at it."""
        epoch, offset, joins = await client.eval(
            _SNAPSHOT, len(self._keys), *self._keys, *self._args()
        )
        position = Position(_text(epoch), int(offset))
        return position, [self._codec.decode(join) for join in joins]

    def reset(self, joins: list[Event]) -> None:
        if self.on_reset is not None:
            self.on_reset(joins)

    def _args(self) -> list[Any]:
        return [secrets.token_hex(4), self._length, self.process]

    async def _run(self, script: str, *args: Any, client: aioredis.Redis | None = None) -> Any:
        redis = client if client is not None else self._client()
        return await redis.eval(script, len(self._keys), *self._keys, *self._args(), *args)


def user_key(user_id: Any) -> str:
    """A user id as a Redis hash field: the same on every process (1 and "1" differ)."""
    return json.dumps(user_id, separators=(",", ":"), default=str)


def _pair(topic: str, user_id: Any) -> str:
    return json.dumps([topic, user_id], separators=(",", ":"), default=str)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
