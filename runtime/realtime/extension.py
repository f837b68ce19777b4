"""`Realtime(app)`: realtime pub/sub for any Quart app, Flask-extension style.

State lives in `app.extensions["realtime"]`; the backend starts and stops with the
app's serving hooks. Committed record changes and `app.realtime_broadcast()` become
events; a session that ends closes its connections with 4401.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from quart import Quart, url_for

from ..base_model import BaseModel, collections
from ..config import RealtimeConfig
from ..db import RecordChange, on_commit
from ..ratelimit import RateLimit, make_storage
from ..realtime_broker import Broker
from ..users import on_session_end
from .backends import backend_from_url
from .events import Event, custom_event, record_event
from .protocol import CloseCode

__all__ = [
    "Identify",
    "Realtime",
    "RealtimeState",
    "current_realtime",
    "realtime_client_script",
    "realtime_client_url",
]

log = logging.getLogger("runtime.realtime")

# Who is connecting: (user or None, an id of their server-side session or None).
Identify = Callable[[], Awaitable[tuple[Any, str | None]]]


@dataclass
class RealtimeState:
    config: RealtimeConfig
    broker: Broker
    identify: Identify
    message_limit: RateLimit
    shutting_down: bool = False


def current_realtime(app: Quart) -> RealtimeState:
    state: RealtimeState = app.extensions["realtime"]
    return state


async def _runtime_identify() -> tuple[Any, str | None]:
    from ..auth import current_session

    auth = current_session()
    return (auth.user, auth.token_hash) if auth is not None else (None, None)


async def _anonymous() -> tuple[Any, str | None]:
    return None, None


class Realtime:
    def __init__(
        self,
        app: Quart | None = None,
        *,
        config: RealtimeConfig | None = None,
        models: Iterable[type[BaseModel]] | None = None,
        identify: Identify | None = None,
    ) -> None:
        self._config = config
        self._models = models
        self._identify = identify
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        from .transports import realtime_blueprint

        runtime = app.extensions.get("runtime")
        config = self._config or (runtime.config.realtime if runtime else RealtimeConfig())
        if self._models is not None:
            served = {m.collection_name(): m for m in self._models}

            def models() -> Mapping[str, type[BaseModel]]:
                return served
        elif runtime is not None:
            by_name = {m.collection_name(): m for m in runtime.models}

            def models() -> Mapping[str, type[BaseModel]]:
                return by_name
        else:
            models = collections

        identify = self._identify or (_runtime_identify if runtime else _anonymous)
        broker = Broker(
            backend_from_url(config.broker, history_size=config.history_size),
            models,
            max_subscriptions=config.max_subscriptions,
            snapshot_limit=config.snapshot_limit,
        )
        message_limit = RateLimit(
            config.message_rate_limit, storage=make_storage("memory://"), namespace="messages"
        )
        state = RealtimeState(config, broker, identify, message_limit)
        app.extensions["realtime"] = state
        app.register_blueprint(realtime_blueprint)
        app.realtime_broadcast = _broadcaster(broker)  # type: ignore[attr-defined]
        app.add_template_global(realtime_client_url)
        app.add_template_global(realtime_client_script)

        def on_changes(changes: list[RecordChange]) -> None:
            served = broker.served()
            events: list[Event] = []
            for change in changes:
                if served.get(change.model.collection_name()) is change.model:
                    event = _to_event(change)
                    if event is not None:
                        events.append(event)
            if events:
                broker.publish_nowait(events)

        def on_session_ended(token_hash: str) -> None:
            loop = broker.loop
            if loop is not None and loop.is_running():
                loop.call_soon_threadsafe(broker.close_session, token_hash)

        @app.before_serving
        async def _start() -> None:
            state.shutting_down = False  # an app may be served again after a shutdown
            await broker.start()
            on_commit.connect(on_changes)
            on_session_end.append(on_session_ended)
            log.info("realtime ready: broker=%s", config.broker)

        @app.after_serving
        async def _stop() -> None:
            on_commit.disconnect(on_changes)
            if on_session_ended in on_session_end:
                on_session_end.remove(on_session_ended)
            await broker.stop()

        async def _going_away() -> None:
            await close_all_going_away(state)

        app.extensions.setdefault("shutdown_hooks", []).append(_going_away)


def realtime_client_url() -> str:
    """Template helper: the URL of the JavaScript client, to import it from a module."""
    return url_for("realtime.client_js")


def realtime_client_script() -> Markup:
    """Template helper: a script tag that loads the client (`window.RealtimeClient`)."""
    return Markup('<script type="module" src="{}"></script>').format(realtime_client_url())


async def close_all_going_away(state: RealtimeState, timeout: float = 1.0) -> None:
    """Close every connection with 1001 and give them up to `timeout` to go."""
    state.shutting_down = True
    state.broker.close_all(CloseCode.GOING_AWAY, "server shutting down")
    if not await state.broker.wait_idle(timeout):
        log.warning("%d connections still open after 1001", len(state.broker.connections))


def _to_event(change: RecordChange) -> Event | None:
    """The event for a change, hidden fields left out; None for an update of hidden
    fields only, which no reader can see."""
    model = change.model
    hidden = set(getattr(model, "hidden", ()))
    record = {k: v for k, v in change.data.items() if k not in hidden}
    changed = tuple(f for f in change.changed if f not in hidden)
    if change.action == "update" and not changed:
        return None
    return record_event(change.action, model.collection_name(), change.record_id, record, changed)


def _broadcaster(broker: Broker) -> Callable[..., str]:
    def realtime_broadcast(
        name: str,
        data: Any = None,
        *,
        collection: str | None = None,
        client_ids: Iterable[str] | None = None,
        user_ids: Iterable[Any] | None = None,
    ) -> str:
        """Publish a custom event; returns its id. Safe from any thread."""
        if not isinstance(name, str) or not name:
            raise ValueError("realtime_broadcast: name must be a non-empty string")
        if collection is not None and collection not in broker.served():
            raise ValueError(f"realtime_broadcast: no collection named {collection!r}")
        event = custom_event(
            name,
            data,
            collection=collection,
            client_ids=frozenset(client_ids) if client_ids is not None else None,
            user_ids=frozenset(user_ids) if user_ids is not None else None,
        )
        return broker.publish(event)

    return realtime_broadcast
