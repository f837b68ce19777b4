"""An app's realtime state, `app.extensions["realtime"]`: what its endpoints serve
connections with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quart import Quart

if TYPE_CHECKING:
    from ..config import RealtimeConfig
    from ..realtime_broker import Broker
    from .clients.admission import Door
    from .clients.commands import CommandRouter
    from .transports.html import Fragments

__all__ = ["Identify", "RealtimeState", "current_realtime"]

# Who is connecting: (user or None, an id of their server-side session or None).
Identify = Callable[[], Awaitable[tuple[Any, str | None]]]


@dataclass
class RealtimeState:
    config: RealtimeConfig
    broker: Broker
    identify: Identify
    door: Door  # who may connect, for both transports
    router: CommandRouter  # what clients send, whatever carries it
    fragments: Fragments  # the app's templates for `format=html` streams
    extension: Any = None  # the Realtime extension serving the app (Realtime.of(app))


def current_realtime(app: Quart) -> RealtimeState:
    state: RealtimeState = app.extensions["realtime"]
    return state
