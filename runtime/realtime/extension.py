"""`Realtime(app)`: realtime pub/sub for any Quart app, Flask-extension style.

State lives in `app.extensions["realtime"]`; the broker starts and stops with the
app's serving hooks. Committed record changes and `app.realtime_broadcast()` become
events; a session that ends closes its connections with 4401. Serving does not start
unless the database of the served collections (or the one given) is open and tracks
changes: one clear line says what is missing, rather than the first subscribe failing.

Change capture: `runtime.db` calls `_on_commit` with each transaction's changes, on the
committing thread and under the commit lock, so queueing the events there puts them in
commit order (see `runtime.realtime.publisher`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypedDict, Unpack

from quart import Quart

from ..base_model import BaseModel, collections
from ..config import RealtimeConfig
from ..db import bound_to, on_commit, require_databases
from ..query import FilterLimits
from ..realtime_broker import Broker, OutboxSettings
from ..users import on_session_end
from .capture import ChangeCapture, install_outboxes
from .channels import Channel, ChannelRule
from .clients.admission import Door, Identify, Identity
from .clients.commands import CommandRouter
from .clients.forwarding import PostForwarding
from .clients.handlers import Handler, check_event_name
from .connections.message_limit import MessageLimit
from .endpoints import (
    RealtimeASGI,
    realtime_blueprint,
    realtime_client_script,
    realtime_client_url,
    realtime_htmx_scripts,
)
from .events import Event, custom_event
from .publishing.backends import REDIS_SCHEMES, BackendUnavailable, backend_from_url
from .publishing.codec import EventCodec
from .publishing.publisher import BrokerUnavailable
from .state import RealtimeState
from .transports.html import Fragments

__all__ = ["Realtime"]

log = logging.getLogger("runtime.realtime")


async def _runtime_identify() -> Identity:
    from ..auth import current_session

    auth = current_session()
    return (auth.user, auth.token_hash, auth.expires_at) if auth is not None else (None, None)


async def _anonymous() -> Identity:
    return None, None


class Realtime:
    def __init__(
        self,
        app: Quart | None = None,
        *,
        config: RealtimeConfig | None = None,
        models: Iterable[type[BaseModel]] | None = None,
        identify: Identify | None = None,
        database: Any = None,
    ) -> None:
        """`models`: the collections served (default: the runtime's, or every one, or
        those bound to `database` when it is given). `database`: a tracking database or
        a `DatabaseProxy` of one, checked when serving starts."""
        self._config = config
        self._models = models
        self._identify = identify
        self._database = database
        # Declared on the extension, for every app it serves (read live by each).
        self.handlers: dict[str, Handler] = {}
        self.channels: dict[str, Channel] = {}
        self.presence_topics: set[str] = set()
        self.fragments: dict[str, str] = {}  # collection -> its record's template
        if app is not None:
            self.init_app(app)

    @staticmethod
    def of(app: Quart) -> Realtime:
        """The Realtime extension serving `app` (the one `create_app()` made, say)."""
        realtime: Realtime = app.extensions["realtime"].extension
        return realtime

    def on(self, name: str) -> Callable[[Handler], Handler]:
        """Register the handler of the client event `name`: `handler(data, sender)`,
        sync or async; its return value is the client's acknowledgement."""
        check_event_name(name)

        def register(handler: Handler) -> Handler:
            self.handlers[name] = handler
            return handler

        return register

    def channel(
        self,
        name: str,
        *,
        read_rule: ChannelRule = "authenticated",
        write_rule: ChannelRule = "nobody",
        presence: bool = False,
    ) -> Channel:
        """Declare a channel: a topic with no model (see runtime/realtime/channels.py)."""
        if name in collections():
            raise ValueError(f"channel {name!r}: a collection has that name")
        channel = Channel(name, read_rule, write_rule, presence)
        self.channels[name] = channel
        if presence:
            self.presence_topics.add(name)
        return channel

    def fragment(self, collection: str, template: str) -> None:
        """Render `collection`'s record events with `template` on SSE streams opened
        with `format=html` (htmx's SSE extension; see runtime/realtime/transports/html.py)."""
        if not isinstance(template, str) or not template:
            raise ValueError(f"fragment {collection!r}: template must be a template name")
        self.fragments[collection] = template

    def track_presence(self, collection: str) -> None:
        """Who is here on a collection: a list on subscribe, join and leave events."""
        self.presence_topics.add(collection)

    def init_app(self, app: Quart) -> None:
        runtime = app.extensions.get("runtime")
        config = self._config or (runtime.config.realtime if runtime else RealtimeConfig())
        config.check()  # one made in Python has not been through load_config's checks
        models = _served_models(self._models, runtime, self._database)
        clash = set(self.channels) & set(models())
        if clash:
            raise ValueError(f"channels {sorted(clash)}: a served collection has that name")
        identify = self._identify or (_runtime_identify if runtime else _anonymous)
        try:
            backend = backend_from_url(
                config.broker,
                history_size=config.history_size,
                history_bytes=config.history_bytes,
                codec=EventCodec(Event),
            )
        except BackendUnavailable as error:  # one line, naming the setting
            raise BrokerUnavailable(f"realtime.broker: {error}") from None
        broker = Broker(
            backend,
            models,
            max_subscriptions=config.max_subscriptions,
            snapshot_limit=config.snapshot_limit,
            replay_limit=config.replay_limit,
            max_pending=config.publish_queue_size,
            heartbeat=config.heartbeat,
            heartbeat_timeout=config.heartbeat_timeout,
            channels=self.channels,
            presence_topics=self.presence_topics,
            outbox=_outbox_settings(config),
            filter_limits=_filter_limits(runtime),
            max_expand=runtime.config.query.max_expand if runtime is not None else 8,
        )
        if config.outbox:  # a script that creates the app writes to the outbox too
            install_outboxes(models().values(), EventCodec(Event))
        lifecycle = broker.lifecycle
        state = RealtimeState(
            config,
            broker,
            identify,
            Door(
                config,
                broker.connections,
                identify,
                lambda: lifecycle.shutting_down,
                broker.sharing.admit if broker.sharing is not None else None,
            ),
            CommandRouter(
                broker,
                config,
                MessageLimit(config.message_rate_limit),
                self.handlers,
                self.channels,
            ),
            Fragments(app, self.fragments),
            self,
        )
        if config.broker.startswith(REDIS_SCHEMES):  # several processes: any takes a POST
            state.forwarding = PostForwarding(
                app, config.broker, broker.connections, state.router, broker.stats.task_restarts
            )
        app.extensions["realtime"] = state
        app.register_blueprint(realtime_blueprint)
        app.asgi_app = RealtimeASGI(app, app.asgi_app)  # type: ignore[method-assign]
        broadcast, broadcast_async = _broadcasters(broker)
        app.realtime_broadcast = broadcast  # type: ignore[attr-defined]
        app.realtime_broadcast_async = broadcast_async  # type: ignore[attr-defined]
        app.add_template_global(realtime_client_url)
        app.add_template_global(realtime_client_script)
        app.add_template_global(realtime_htmx_scripts)
        self._serve_with(app, broker, models, config)
        if state.forwarding is not None:  # once the broker has started; stopped after it
            app.before_serving(state.forwarding.start)
            app.after_serving(state.forwarding.stop)

    def _serve_with(
        self,
        app: Quart,
        broker: Broker,
        models: Callable[[], Mapping[str, type[BaseModel]]],
        config: RealtimeConfig,
    ) -> None:
        """Start `broker` when `app` starts serving, with the database checked and its
        changes captured; stop it when serving stops; close its connections with 1001
        when the server shuts down."""
        capture = ChangeCapture(broker.served, broker.publish)

        def on_session_ended(token_hash: str) -> None:
            broker.end_session(token_hash)

        @app.before_serving
        async def _start() -> None:
            require_databases(models().values(), self._database)
            try:
                await broker.start()
            except BackendUnavailable as error:  # one line, naming the setting
                raise BrokerUnavailable(f"realtime.broker: {error}") from None
            on_commit.connect(capture)
            on_session_end.append(on_session_ended)
            log.info("realtime ready: broker=%s", config.broker)

        @app.after_serving
        async def _stop() -> None:
            on_commit.disconnect(capture)
            if on_session_ended in on_session_end:
                on_session_end.remove(on_session_ended)
            await broker.stop()

        async def _going_away() -> None:
            await broker.lifecycle.going_away(timeout=1.0)

        app.extensions.setdefault("shutdown_hooks", []).append(_going_away)


def _filter_limits(runtime: Any) -> FilterLimits:
    """The bounds of filter expressions (`[query]`), the records API's own."""
    if runtime is None:
        return FilterLimits()
    bounds = runtime.config.query
    return FilterLimits(bounds.max_length, bounds.max_depth, bounds.max_terms)


def _outbox_settings(config: RealtimeConfig) -> OutboxSettings | None:
    if not config.outbox:
        return None
    return OutboxSettings(
        poll=config.outbox_poll,
        keep=config.outbox_keep,
        size=config.outbox_size,
        group_wait=config.outbox_group_wait,
    )


def _served_models(
    models: Iterable[type[BaseModel]] | None, runtime: Any, database: Any
) -> Callable[[], Mapping[str, type[BaseModel]]]:
    if models is None and runtime is None and database is not None:
        # The collections of that database, including ones defined later.
        return lambda: {n: m for n, m in collections().items() if bound_to(m, database)}
    if models is None and runtime is None:
        return collections  # every collection, including ones defined later
    chosen = list(models if models is not None else runtime.models)
    for model in chosen if database is not None else ():
        if not bound_to(model, database):
            raise ValueError(f"Realtime: {model.__name__} is bound to another database")
    by_name = {model.collection_name(): model for model in chosen}
    return lambda: by_name


class Targets(TypedDict, total=False):
    """Who a broadcast reaches: the readers of a collection or channel, and of those (or
    of everyone) only some connections or users."""

    collection: str | None
    client_ids: Iterable[str] | None
    user_ids: Iterable[Any] | None


def _event(broker: Broker, name: str, data: Any, targets: Targets) -> Event:
    collection = targets.get("collection")
    if collection is not None and not (
        collection in broker.served() or collection in broker.channels
    ):
        raise ValueError(f"realtime_broadcast: no collection or channel named {collection!r}")
    return custom_event(name, data, **targets)


def _broadcasters(broker: Broker) -> tuple[Callable[..., str], Callable[..., Awaitable[str]]]:
    def realtime_broadcast(name: str, data: Any = None, **targets: Unpack[Targets]) -> str:
        """Publish a custom event; returns its id. Keywords: `collection`, `client_ids`,
        `user_ids`. From sync code on any thread (from another thread it waits for the
        event loop to publish it)."""
        return broker.publish_one(_event(broker, name, data, targets))

    async def realtime_broadcast_async(
        name: str, data: Any = None, **targets: Unpack[Targets]
    ) -> str:
        """`realtime_broadcast` for async code: awaits the event's id."""
        return await broker.publish_async(_event(broker, name, data, targets))

    return realtime_broadcast, realtime_broadcast_async
