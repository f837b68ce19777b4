"""Authentication: login, logout and the current user, over Quart's signed session cookie.

The cookie (signed with itsdangerous by Quart) holds only a random token; the
`auth_sessions` table decides whether it is still good (see `runtime.users`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from quart import Blueprint, Response, current_app, g, jsonify, session

from .config import Config
from .errors import BadRequest, RateLimited, Unauthorized
from .origins import refuse_cross_site
from .proxies import request_client
from .ratelimit import RateLimit, make_storage, storage_uri
from .requests import read_body
from .users import Session, User

if TYPE_CHECKING:
    from limits.storage import Storage

__all__ = [
    "LoginLimits",
    "auth_blueprint",
    "current_session",
    "current_user",
    "log_in",
    "log_out",
    "rate_limit_storage",
]

auth_blueprint = Blueprint("auth", __name__, url_prefix="/auth")
_SESSION_KEY = "sid"
_MAX_CREDENTIAL = 256


def rate_limit_storage(config: Config) -> Storage:
    """Where the app's rate limits count: logins' and the records API's."""
    return make_storage(*storage_uri(config.auth.rate_limit_storage, config.realtime.broker))


class LoginLimits:
    """Failed logins counted per username and per client address."""

    def __init__(self, config: Config, storage: Storage) -> None:
        self.per_user = RateLimit(
            config.auth.login_limit_per_user, storage=storage, namespace="login-user"
        )
        self.per_address = RateLimit(
            config.auth.login_limit_per_address, storage=storage, namespace="login-address"
        )

    def check(self, username: str, address: str) -> None:
        wait = max(self.per_user.retry_after(username), self.per_address.retry_after(address))
        if wait:
            raise RateLimited("Too many failed login attempts; try again later.", retry_after=wait)

    def failed(self, username: str, address: str) -> None:
        self.per_user.hit(username)
        self.per_address.hit(address)


def current_session() -> Session | None:
    """The live server-side session of this request or websocket, looked up once."""
    if "auth_session" not in g:
        g.auth_session = Session.resolve(session.get(_SESSION_KEY))
        if g.auth_session is None and _SESSION_KEY in session:
            session.pop(_SESSION_KEY)  # ended or expired: drop the stale cookie
    result: Session | None = g.auth_session
    return result


def current_user() -> User | None:
    auth = current_session()
    return auth.user if auth is not None else None


async def log_in(username: str, password: str) -> User:
    """Check the credentials (rate-limited) and start a session for this client."""
    limits: LoginLimits = current_app.extensions["runtime"].login_limits
    address = request_client().address  # X-Forwarded-For only from a trusted proxy
    # In a thread: the counts may be in Redis, and its client is synchronous.
    await asyncio.to_thread(limits.check, username, address)
    user = await User.aauthenticate(username, password)
    if user is None:
        await asyncio.to_thread(limits.failed, username, address)
        raise Unauthorized("Invalid username or password.")
    old = current_session()
    if old is not None:
        old.end()
    config: Config = current_app.extensions["runtime"].config
    auth, token = Session.start(user, config.auth.session_lifetime)
    session.clear()
    session[_SESSION_KEY] = token
    session.permanent = True
    g.auth_session = auth
    return user


def log_out() -> None:
    """End this client's session on the server, if it has one (its realtime connections
    close with 4401), and forget its cookie. Refused from another site's pages."""
    refuse_cross_site()
    auth = current_session()
    if auth is not None:
        auth.end()
    session.clear()
    g.auth_session = None


def _credentials(body: dict[str, Any]) -> tuple[str, str]:
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("username and password are required strings.")
    if not username or not password:
        raise BadRequest("username and password must not be empty.")
    if len(username) > _MAX_CREDENTIAL or len(password) > _MAX_CREDENTIAL:
        raise BadRequest("username or password is too long.")
    return username, password


@auth_blueprint.post("/login")
async def login() -> Response:
    refuse_cross_site()
    user = await log_in(*_credentials(await read_body(allow_form=True)))
    return jsonify({"user": user.public_dict()})


@auth_blueprint.post("/logout")
async def logout() -> Response:
    log_out()
    return jsonify({"ok": True})


@auth_blueprint.get("/me")
async def me() -> Response:
    user = current_user()
    if user is None:
        raise Unauthorized()
    return jsonify({"user": user.public_dict()})
