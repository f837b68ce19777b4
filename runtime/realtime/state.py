"""An app's realtime state, `app.extensions["realtime"]`: what its endpoints serve
connections with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quart import Quart

if TYPE_CHECKING:
    from ..config import RealtimeConfig
    from ..realtime_broker import Broker
    from .clients.admission import Door, Identify
    from .clients.commands import CommandRouter
    from .clients.forwarding import PostForwarding
    from .transports.html import Fragments

__all__ = ["RealtimeState", "current_realtime"]


@dataclass
class RealtimeState:
    config: RealtimeConfig
    broker: Broker
    identify: Identify
    door: Door  # who may connect, for both transports
    router: CommandRouter  # what clients send, whatever carries it
    fragments: Fragments  # the app's templates for `format=html` streams
    extension: Any = None  # the Realtime extension serving the app (Realtime.of(app))
    # Several processes on Redis: SSE POSTs for the streams of others go to them.
    forwarding: PostForwarding | None = None


def current_realtime(app: Quart) -> RealtimeState:
    state: RealtimeState = app.extensions["realtime"]
    return state
