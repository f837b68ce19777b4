"""The demo app: `messages` (public read, authenticated create, owner update and delete),
`notes` (owner only), and server-rendered pages for both. Importing this module
registers the two collections.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import peewee
from quart import Blueprint, current_app, redirect, render_template, request, url_for
from quart.typing import ResponseReturnValue

from .auth import current_session, current_user, log_in
from .base_model import BaseModel
from .errors import ApiError, Forbidden
from .origins import refuse_cross_site
from .redirects import same_site_path
from .users import User, utcnow

__all__ = ["Message", "Note", "pages_blueprint"]

pages_blueprint = Blueprint("pages", __name__)
_TEXT_LIMIT = 500


class Message(BaseModel):
    text = peewee.CharField(max_length=_TEXT_LIMIT)
    author = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="messages")
    # Kept beside the id so that live pages can show who wrote a message: other users'
    # records are not readable (users are self-or-admin).
    author_name = peewee.CharField(max_length=64, default="")
    created_at = peewee.DateTimeField(default=utcnow)

    read_rule = "public"
    create_rule = "authenticated"  # anyone logged in may post,
    update_rule = delete_rule = "owner"  # only the author may edit or delete
    owner_field = "author"
    read_only = ("author_name", "created_at")

    class Meta:
        table_name = "messages"

    def save(self, force_insert: bool = False, only: Any = None) -> int:
        if not self.author_name and self.author_id is not None:
            self.author_name = User.get_by_id(self.author_id).username
        return super().save(force_insert=force_insert, only=only)


class Note(BaseModel):
    title = peewee.CharField(max_length=200)
    body = peewee.TextField(default="")
    owner = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="notes")
    created_at = peewee.DateTimeField(default=utcnow)

    read_rule = "owner"
    write_rule = "owner"
    owner_field = "owner"
    read_only = ("created_at",)

    class Meta:
        table_name = "notes"


def csrf_token() -> str:
    """A per-session token that page forms carry, so other sites cannot post them."""
    auth = current_session()
    key = current_app.config["SECRET_KEY"].encode()
    subject = auth.token_hash if auth is not None else "anonymous"
    return hmac.new(key, b"csrf:" + subject.encode(), hashlib.sha256).hexdigest()


@pages_blueprint.app_context_processor
def _template_helpers() -> dict[str, Any]:
    return {"csrf_token": csrf_token}


async def _form() -> dict[str, str]:
    form = await request.form
    if not hmac.compare_digest(form.get("csrf_token", ""), csrf_token()):
        raise Forbidden("The form has expired; reload the page and try again.")
    return {key: form.get(key, "") for key in form}


# The pages apply the collections' rules as the records API does.


def _create(record: BaseModel, user: User) -> None:
    if not record.creatable_by(user):
        raise Forbidden("You may not create this record.")
    record.save(force_insert=True)


def _delete(record: BaseModel, user: User | None) -> None:
    if not record.deletable_by(user):
        raise Forbidden("You may not delete this record.")
    record.delete_instance()


def _login_needed() -> ResponseReturnValue:
    return redirect(url_for("pages.login_page", next=request.path))


@pages_blueprint.get("/")
async def index() -> ResponseReturnValue:
    return redirect(url_for("pages.messages_page"))


@pages_blueprint.route("/login", methods=["GET", "POST"])
async def login_page() -> ResponseReturnValue:
    next_url = same_site_path(request.args.get("next")) or url_for("pages.messages_page")
    error = None
    if request.method == "POST":
        refuse_cross_site()  # the login form has no token: a logged-out visitor has no session
        form = await request.form
        try:
            await log_in(form.get("username", ""), form.get("password", ""))
        except ApiError as exc:
            error = exc.message
        else:
            return redirect(next_url)
    status = 200 if error is None else 400
    return await render_template("login.html", error=error, next_url=next_url), status


@pages_blueprint.post("/logout")
async def logout_page() -> ResponseReturnValue:
    refuse_cross_site()
    await _form()
    auth = current_session()
    if auth is not None:
        auth.end()
    return redirect(url_for("pages.login_page"))


@pages_blueprint.get("/messages")
async def messages_page() -> ResponseReturnValue:
    messages = Message.select(Message, User).join(User).order_by(Message.id.desc()).limit(100)
    return await render_template("messages.html", messages=list(reversed(list(messages))))


@pages_blueprint.post("/messages")
async def post_message() -> ResponseReturnValue:
    form = await _form()
    user = current_user()
    if user is None:
        return _login_needed()
    text = form.get("text", "").strip()[:_TEXT_LIMIT]
    if text:
        _create(Message(text=text, author=user), user)
    return redirect(url_for("pages.messages_page"))


@pages_blueprint.post("/messages/<int:message_id>/delete")
async def delete_message(message_id: int) -> ResponseReturnValue:
    await _form()
    user = current_user()
    message = Message.get_or_none(Message.id == message_id)
    if message is not None:
        _delete(message, user)
    return redirect(url_for("pages.messages_page"))


@pages_blueprint.get("/notes")
async def notes_page() -> ResponseReturnValue:
    user = current_user()
    if user is None:
        return _login_needed()
    notes = Note.readable_query(user).order_by(Note.id.desc())
    return await render_template("notes.html", notes=list(notes))


@pages_blueprint.post("/notes")
async def post_note() -> ResponseReturnValue:
    form = await _form()
    user = current_user()
    if user is None:
        return _login_needed()
    title = form.get("title", "").strip()[:200]
    if title:
        _create(Note(title=title, body=form.get("body", "")[:10_000], owner=user), user)
    return redirect(url_for("pages.notes_page"))


@pages_blueprint.post("/notes/<int:note_id>/delete")
async def delete_note(note_id: int) -> ResponseReturnValue:
    await _form()
    user = current_user()
    note = Note.readable_query(user).where(Note.id == note_id).get_or_none()
    if note is not None:
        _delete(note, user)
    return redirect(url_for("pages.notes_page"))
