"""Sharing: this process's part of presence and connection counts, kept in a backend
several processes share (Redis: publishing/backends/redis_shared.py).

This process decides alone only what it knows: whether it has a user on a topic, and
how many connections each user has here. Those change synchronously (a subscribe, a
disconnect) and are sent by one task, in the order of the changes, as the latest state
of each (so a retry or a change that was undone meanwhile is harmless). The task also
renews this process's liveness each interval, which forgets the processes that died;
and when it learns that this process was itself forgotten (stalled, cut off), it sends
its whole state again.

A Redis that cannot be reached never stops serving: the changes wait and go when it is
back (presence catches up then, joins and leaves included); meanwhile
`max_connections_per_user` counts this process's connections only (it fails open), and
a process cut off longer than the expiry has its members' leaves published by another,
then their joins again by itself once back. Each outage is logged once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ...json_values import json_tree
from ..events import Event
from ..publishing.backends.redis_shared import PresenceChange, liveness, user_key

if TYPE_CHECKING:
    from ..connections.index import ConnectionIndex
    from ..publishing.backends.redis_shared import RedisShared
    from .presence import Presence

__all__ = ["Sharing"]

log = logging.getLogger("runtime.realtime")

RETRY_DELAYS = (0.05, 5.0)  # seconds, growing, between attempts while Redis is down


class Sharing:
    def __init__(
        self,
        ledger: RedisShared,
        presence: Presence,
        connections: ConnectionIndex,
        *,
        heartbeat: float,
    ) -> None:
        self._ledger = ledger
        self._presence = presence
        self._connections = connections
        self.interval, ledger.expiry = liveness(heartbeat)
        self._pairs: dict[tuple[str, Any], Any] = {}  # (topic, user id) -> its public id
        self._users: set[Any] = set()  # user ids whose connection count changed
        self._wake: asyncio.Event | None = None
        self.up = True  # the last call to Redis succeeded
        presence.changed = self._presence_changed
        connections.on_user_change = self._user_changed

    # -- changes (synchronous, on the loop's thread) ------------------------------------

    def _presence_changed(self, topic: str, user_id: Any, user: Any) -> None:
        public_id = user.get("id") if isinstance(user, dict) else json_tree(user_id)
        self._pairs[(topic, user_id)] = public_id
        self._notify()

    def _user_changed(self, user_id: Any) -> None:
        self._users.add(user_id)
        self._notify()

    def _notify(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- the task -----------------------------------------------------------------------

    async def run(self) -> None:
        """Send the changes as they come, renew every interval; until cancelled."""
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        renew_at = loop.time()
        delay = RETRY_DELAYS[0]
        while True:
            try:
                if loop.time() >= renew_at:
                    renew_at = loop.time() + self.interval
                    if not await self._ledger.renew():
                        self._resend_everything()
                await self._send()
            except (RedisError, OSError) as error:
                self._down(error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_DELAYS[1])
                renew_at = loop.time()  # first, when back: were we forgotten meanwhile?
                continue
            self._back()
            delay = RETRY_DELAYS[0]
            if self._pairs or self._users:
                continue  # changed while this sent
            self._wake.clear()
            try:
                async with asyncio.timeout(max(renew_at - loop.time(), 0)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _send(self) -> None:
        """Send the latest state of what changed; kept to send again if this fails."""
        pairs, self._pairs = self._pairs, {}
        users, self._users = self._users, set()
        try:
            changes = [self._change(topic, uid, public) for (topic, uid), public in pairs.items()]
            counts = {user_key(json_tree(u)): self._connections.count_of_user(u) for u in users}
            registered = await self._ledger.change_presence(changes)
            registered = registered and await self._ledger.set_connections(counts)
        except BaseException:
            self._pairs = {**pairs, **self._pairs}
            self._users |= users
            raise
        if not registered:  # forgotten meanwhile: register, then send all again
            await self._ledger.renew()
            self._resend_everything()

    def _change(self, topic: str, user_id: Any, public_id: Any) -> PresenceChange:
        user = self._presence.user_here(topic, user_id)
        if user is None:
            return PresenceChange(topic, public_id)
        return PresenceChange(
            topic, public_id, Event("join", topic, user=user), Event("leave", topic, user=user)
        )

    def _resend_everything(self) -> None:
        for topic, user_id, user in self._presence.users_here():
            self._presence_changed(topic, user_id, user)
        for conn in self._connections:
            if conn.user is not None:
                self._users.add(conn.user_id)

    async def stop(self) -> None:
        """This process leaves: its members leave where it was their last process."""
        try:
            await self._ledger.leave()
        except (RedisError, OSError) as error:
            log.warning(
                "realtime: could not tell Redis this process stops (%s); its members "
                "leave when it expires",
                error,
            )

    # -- connection caps ----------------------------------------------------------------

    async def admit(self, user_id: Any, here: int, cap: int) -> bool:
        """Whether a user with `here` connections on this process, the new one
        included, is within `cap` on every process. Fails open while Redis is down."""
        if not self.up:
            return True
        try:
            admitted = await self._ledger.admit(user_key(json_tree(user_id)), here, cap)
        except (RedisError, OSError) as error:
            self._down(error)
            return True
        if admitted is None:  # forgotten: the task registers this process again
            self._resend_everything()
            return True
        return admitted

    def _down(self, error: BaseException) -> None:
        if self.up:
            log.error(
                "realtime: cannot reach Redis for presence and connection caps (%s); "
                "caps count this process's connections only until it is back",
                error,
            )
        self.up = False

    def _back(self) -> None:
        if not self.up:
            log.warning("realtime: presence and connection caps shared through Redis again")
        self.up = True
