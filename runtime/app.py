"""The application factory: configuration, database, auth, login pages, records API,
realtime. The demo is not part of it (see `runtime.demo`)."""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from limits.storage import MemoryStorage, Storage
from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from .api import api_blueprint
from .auth import LoginLimits, auth_blueprint, current_user, rate_limit_storage
from .base_model import BaseModel, collections
from .config import Config, ConfigError, load_config
from .csrf import csrf_token
from .database_url import redacted
from .db import DatabaseUnavailable, TrackingSqliteDatabase, database, open_database
from .development import debug_response
from .errors import ApiError, error_body, error_response
from .pages import login_pages
from .ratelimit import LocalLimit, RateLimit
from .realtime import Realtime, client_script_response
from .schema import check_schema
from .session_cookies import SessionCookies
from .sqlite_checkpoints import Checkpointer
from .users import Session, User

__all__ = ["RuntimeState", "create_app", "default_config"]

log = logging.getLogger("runtime")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    429: "rate_limited",
}


@dataclass
class RuntimeState:
    """What the runtime keeps on `app.extensions["runtime"]`."""

    config: Config
    login_limits: LoginLimits
    # Requests to the records API, per user or address (`api.rate_limit`).
    api_limit: LocalLimit | RateLimit | None = None
    models: set[type[BaseModel]] = field(default_factory=set)

    def serves(self, model: type[BaseModel]) -> bool:
        return model in self.models

    def tables(self) -> list[type[BaseModel]]:
        """The models whose tables the app needs: users, sessions and what it serves."""
        served = sorted(self.models - {User}, key=lambda m: m.__name__)
        return [User, Session, *served]  # User is among the models served (its API)

    def current_user(self) -> User | None:
        """The logged-in user of the request or WebSocket being served."""
        return current_user()


def create_app(
    config: Config | None = None,
    *,
    models: Iterable[type[BaseModel]] | None = None,
    realtime: Realtime | None = None,
    root_path: str | os.PathLike[str] | None = None,
    login_page: bool = True,
) -> Quart:
    """A runtime app: users and sessions, the records API, realtime, a login page.

    `models` defaults to every registered collection. `realtime` is the extension with
    the app's channels, client-event handlers and fragments (a new one by default;
    `Realtime.of(app)` gives it back). `root_path` is the app's folder, where its
    `templates/` and `static/` are (Quart's defaults); by default the current
    directory. `login_page=False` leaves `/login` and `/logout` to the app.
    """
    config = config or default_config()
    configure_logging(config.app.log_level)
    app = Quart(__name__, root_path=os.fspath(root_path or os.getcwd()))
    app.config.update(
        SECRET_KEY=config.app.secret_key,
        SESSION_COOKIE_NAME=config.auth.cookie_name,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # Quart's default is none
        SESSION_COOKIE_SECURE=config.auth.cookie_secure,
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(seconds=config.auth.session_lifetime),
        # The cookie is set when it changes (a login), not re-signed into every answer:
        # the server-side session it names ends at login + lifetime however often it is
        # used, and re-signing cost each request about a tenth of a write's time.
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=config.api.max_body_size,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.session_interface = SessionCookies()  # a cookie value's signature checked once

    served = set(models) if models is not None else set(collections().values())
    served.add(User)
    limits = rate_limit_storage(config)
    state = RuntimeState(
        config=config,
        login_limits=LoginLimits(config, limits),
        api_limit=_api_limit(config.api.rate_limit, limits),
        models=served,
    )
    app.extensions["runtime"] = state

    _open_database(app, config)
    check_schema(state.tables(), auto_migrate=config.database.auto_migrate)

    app.register_blueprint(auth_blueprint)
    app.register_blueprint(api_blueprint)
    if login_page:
        app.register_blueprint(login_pages)
    (realtime or Realtime()).init_app(app)
    app.before_request(_read_whole_body)
    _register_error_handlers(app)
    app.context_processor(lambda: {"current_user": current_user()})
    app.add_template_global(csrf_token)
    # Where the client was before apps had static folders of their own (also
    # /realtime/client.js, as in any app with Realtime).
    app.add_url_rule("/static/realtime-client.js", "runtime_client_js", client_script_response)
    log.debug("app created: env=%s database=%s", config.app.env, redacted(config.database.target))
    return app


def default_config() -> Config:
    """The configuration `create_app()` reads when given none, as the command line does:
    the file the CONFIG environment variable names (which must exist), else
    `config.toml` in the current directory if there is one, and `RUNTIME_*` variables."""
    path = os.environ.get("CONFIG")
    if path and not Path(path).is_file():
        raise ConfigError(f"CONFIG: no file {path!r}")
    return load_config(path or "config.toml")


def _api_limit(spec: str, storage: Storage) -> LocalLimit | RateLimit | None:
    """`api.rate_limit`, counted in Redis when the rate limits are, else here."""
    if not spec:
        return None
    if isinstance(storage, MemoryStorage):
        return LocalLimit(spec)
    return RateLimit(spec, storage=storage, namespace="api")


def _open_database(app: Quart, config: Config) -> None:
    """Open `[database]` (one line naming the key if it cannot be), and close the serving
    thread's connection when serving stops (PostgreSQL connections are not left to the
    garbage collector)."""
    key = "database.url" if config.database.url else "database.path"
    try:
        opened = open_database(config.database.target)
    except DatabaseUnavailable as exc:
        raise DatabaseUnavailable(f"{key}: {exc}") from None
    if isinstance(opened, TrackingSqliteDatabase) and opened.database != ":memory:":
        # WAL checkpoints off the serving thread (runtime/sqlite_checkpoints.py).
        checkpointer = app.extensions["sqlite_checkpointer"] = Checkpointer(opened)

        @app.before_serving
        async def _start_checkpoints() -> None:
            checkpointer.start()  # here: the serving thread's connections are the quiet ones

        @app.after_serving
        async def _stop_checkpoints() -> None:
            checkpointer.stop()

    @app.after_serving
    async def _close_database() -> None:
        if database.obj is not None and not database.in_transaction():
            database.close()


def configure_logging(level: str) -> None:
    """Readable logs for operators: time, level, logger, message, one line each."""
    root = logging.getLogger()
    if not any(getattr(h, "_runtime", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        handler._runtime = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())


async def _read_whole_body() -> None:
    """Read the body (at most `api.max_body_size`) before any handler answers.

    A handler that answers early (401, 403, 404) would otherwise leave the body unread
    on the connection, and Hypercorn then drops the connection under the next request
    of a keep-alive client.
    """
    if request.content_length or "transfer-encoding" in request.headers:
        await request.get_data(cache=True)


def _register_error_handlers(app: Quart) -> None:
    @app.errorhandler(ApiError)
    async def api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = {413: "The request body is too large."}.get(status, error.name + ".")
        response = Response(
            app.json.dumps(error_body(code, message)), status=status, mimetype="application/json"
        )
        if status == 413:
            # The rest of the body is never read, so this connection cannot carry another
            # request: say so, or a keep-alive client sends one into a closing socket.
            response.headers["Connection"] = "close"
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    async def unexpected_error(error: Exception) -> Response:
        log.exception("unhandled error", exc_info=error)
        if app.debug:  # `serve --debug` only, which is refused in production
            return debug_response(error)
        response = Response(
            app.json.dumps(error_body("internal_error", "Internal server error.")),
            status=500,
            mimetype="application/json",
        )
        return response
