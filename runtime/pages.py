"""What server-rendered pages need: a login page and logout, `login_required`, and CSRF
tokens for forms (see docs/pages.md).

`create_app()` registers `login_pages` (`GET|POST /login`, `POST /logout`); its templates,
`runtime/login.html` on the layout `runtime/base.html`, come with the package and an
app's own `templates/runtime/login.html` replaces them. Both views keep the protections
of `POST /auth/login`: rate-limited failures, cross-site requests refused, and `next`
only ever a path on this site.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar
from urllib.parse import quote

from quart import Blueprint, current_app, redirect, render_template, request, url_for
from quart.typing import ResponseReturnValue

from .auth import current_user, log_in, log_out
from .csrf import check_csrf, csrf_protect, csrf_token
from .errors import ApiError, Unauthorized
from .origins import refuse_cross_site
from .redirects import same_site_path

__all__ = [
    "LOGIN_VIEW",
    "check_csrf",
    "csrf_protect",
    "csrf_token",
    "login_pages",
    "login_required",
    "wants_html",
]

# The app config key naming the endpoint `login_required` sends browsers to.
LOGIN_VIEW = "LOGIN_VIEW"
_DEFAULT_LOGIN_VIEW = "login.page"

login_pages = Blueprint("login", __name__, template_folder="templates")

P = ParamSpec("P")
R = TypeVar("R")


def wants_html() -> bool:
    """Whether the client asked for a page (browsers name `text/html` in `Accept` when
    they load a page or post a form; `fetch()`, curl and API clients do not)."""
    return any(
        value in ("text/html", "application/xhtml+xml") and quality > 0
        for value, quality in request.accept_mimetypes
    )


def login_required(
    view: Callable[P, Awaitable[ResponseReturnValue]],
) -> Callable[P, Awaitable[ResponseReturnValue]]:
    """A view decorator: a visitor asking for a page is sent to the login page (with
    `next` back here); any other request gets 401 `unauthorized` as JSON."""

    @functools.wraps(view)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
        if current_user() is not None:
            return await view(*args, **kwargs)
        if not wants_html():
            raise Unauthorized("Log in first.")
        here = quote(request.path)
        if request.query_string:
            here += "?" + request.query_string.decode("latin-1")
        endpoint = current_app.config.get(LOGIN_VIEW) or _DEFAULT_LOGIN_VIEW
        return redirect(url_for(endpoint, next=same_site_path(here)))

    return guarded


@login_pages.route("/login", methods=["GET", "POST"])
async def page() -> ResponseReturnValue:
    next_url = same_site_path(request.args.get("next")) or "/"
    error = None
    if request.method == "POST":
        refuse_cross_site()  # no token here: a logged-out visitor has no session yet
        form = await request.form
        try:
            await log_in(form.get("username", ""), form.get("password", ""))
        except ApiError as exc:  # wrong password, rate-limited
            error = exc.message
        else:
            return redirect(next_url)
    status = 200 if error is None else 400
    return await render_template("runtime/login.html", error=error, next_url=next_url), status


@login_pages.post("/logout")
@csrf_protect
async def logout() -> ResponseReturnValue:
    log_out()
    return redirect(url_for("login.page"))
