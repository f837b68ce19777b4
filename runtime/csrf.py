"""CSRF tokens for the forms of server-rendered pages.

A form posted with the session cookie could come from another site's page; the token,
an HMAC of the server-side session with the app's secret key, is what such a page cannot
know. Templates put `{{ csrf_token() }}` in a hidden `csrf_token` field (or scripts send
it as `X-CSRF-Token`); POST views check it with `await check_csrf()` or `@csrf_protect`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from quart import current_app, request

from .auth import current_session
from .errors import Forbidden
from .requests import SAFE_METHODS

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "check_csrf", "csrf_protect", "csrf_token"]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

P = ParamSpec("P")
R = TypeVar("R")


def csrf_token() -> str:
    """This session's token (a visitor without a session has one too, until they log in)."""
    auth = current_session()
    key = str(current_app.config["SECRET_KEY"]).encode()
    subject = auth.token_hash if auth is not None else "anonymous"
    return hmac.new(key, b"csrf:" + subject.encode(), hashlib.sha256).hexdigest()


async def check_csrf() -> None:
    """Forbidden (403) unless the request carries this session's token, in the form's
    `csrf_token` field or the `X-CSRF-Token` header."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form
        sent = form.get(CSRF_FIELD, "")
    if not hmac.compare_digest(sent.encode(), csrf_token().encode()):
        raise Forbidden("The form has expired; reload the page and try again.")


def csrf_protect(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A view decorator: `check_csrf()` before the view, for every method but GET, HEAD
    and OPTIONS."""

    @functools.wraps(view)
    async def protected(*args: P.args, **kwargs: P.kwargs) -> R:
        if request.method not in SAFE_METHODS:
            await check_csrf()
        return await view(*args, **kwargs)

    return protected
