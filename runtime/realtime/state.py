"""What the transports share: the realtime state of an app, and the broker's interface.

The transports (WebSocket, SSE) and the commands they carry out see the broker through
the `Hub` protocol, so nothing in this package imports `runtime.realtime_broker`, which
is built on top of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from quart import Quart

from ..config import RealtimeConfig
from .channels import Channel
from .clients.handlers import Handler
from .clients.message_limit import MessageLimit
from .connections.connection import Connection
from .connections.flusher import Flusher
from .events import Event
from .fanout.access import Faults
from .fanout.registry import SubscriptionRegistry
from .patterns import Pattern
from .protocol import Frame, ProtocolError, Subscribe
from .stats import DeliveryStats

__all__ = ["Hub", "Identify", "RealtimeState", "current_realtime"]

# Who is connecting: (user or None, an id of their server-side session or None).
Identify = Callable[[], Awaitable[tuple[Any, str | None]]]


class Hub(Protocol):
    """What transports and commands need of the broker."""

    stats: DeliveryStats
    faults: Faults
    registry: SubscriptionRegistry[Connection]
    flusher: Flusher

    def connect(self, conn: Connection) -> None: ...
    def disconnect(self, conn: Connection) -> None: ...
    def connection(self, connection_id: str) -> Connection | None: ...
    def connection_count(self) -> int: ...
    def count_of_user(self, user_id: Any) -> int: ...
    def count_of_address(self, address: str) -> int: ...
    def counts_by_transport(self) -> dict[str, int]: ...

    async def subscribe(
        self,
        conn: Connection,
        commands: Sequence[Subscribe | ProtocolError],
        *,
        replies_on_stream: bool = True,
    ) -> list[Frame]: ...

    def unsubscribe(self, conn: Connection, pattern: Pattern) -> None: ...

    async def publish_async(self, event: Event) -> str: ...


@dataclass
class RealtimeState:
    """`app.extensions["realtime"]`."""

    config: RealtimeConfig
    broker: Hub
    identify: Identify
    message_limit: MessageLimit
    # The app's, declared on its Realtime extension (and read live).
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    channels: Mapping[str, Channel] = field(default_factory=dict)
    extension: Any = None  # the Realtime extension serving the app (Realtime.of(app))
    shutting_down: bool = False


def current_realtime(app: Quart) -> RealtimeState:
    state: RealtimeState = app.extensions["realtime"]
    return state
