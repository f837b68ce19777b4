"""The demo's pages: the live messages page and the owner-only notes page. They apply
the collections' rules as the records API does, and use the runtime's login page,
`login_required` and CSRF tokens (`runtime.pages`) like any app's pages."""

from __future__ import annotations

from quart import Blueprint, redirect, render_template, request, url_for
from quart.typing import ResponseReturnValue

from ..auth import current_user
from ..base_model import BaseModel
from ..errors import Forbidden
from ..pages import csrf_protect, login_required
from ..users import User
from .models import TEXT_LIMIT, Message, Note

__all__ = ["demo_blueprint"]

demo_blueprint = Blueprint("demo", __name__)


def _create(record: BaseModel, user: User | None) -> None:
    if not record.creatable_by(user):
        raise Forbidden("You may not create this record.")
    record.save(force_insert=True)


def _delete(record: BaseModel, user: User | None) -> None:
    if not record.deletable_by(user):
        raise Forbidden("You may not delete this record.")
    record.delete_instance()


@demo_blueprint.get("/")
async def index() -> ResponseReturnValue:
    return redirect(url_for("demo.messages_page"))


@demo_blueprint.get("/messages")
async def messages_page() -> ResponseReturnValue:
    messages = Message.select(Message, User).join(User).order_by(Message.id.desc()).limit(100)
    return await render_template("messages.html", messages=list(reversed(list(messages))))


@demo_blueprint.get("/htmx")
async def htmx_page() -> ResponseReturnValue:
    """The messages live with htmx: fragments rendered by the server, no JS of its own."""
    return await render_template("htmx.html")


@demo_blueprint.post("/messages")
@csrf_protect
@login_required
async def post_message() -> ResponseReturnValue:
    form = await request.form
    text = form.get("text", "").strip()[:TEXT_LIMIT]
    if text:
        _create(Message(text=text, author=current_user()), current_user())
    if request.headers.get("HX-Request") == "true":
        return "", 204  # htmx posted it: the page hears of it as an event, like any other
    return redirect(url_for("demo.messages_page"))


@demo_blueprint.post("/messages/<int:message_id>/delete")
@csrf_protect
async def delete_message(message_id: int) -> ResponseReturnValue:
    message = Message.get_or_none(Message.id == message_id)
    if message is not None:
        _delete(message, current_user())
    return redirect(url_for("demo.messages_page"))


@demo_blueprint.get("/notes")
@login_required
async def notes_page() -> ResponseReturnValue:
    notes = Note.readable_query(current_user()).order_by(Note.id.desc())
    return await render_template("notes.html", notes=list(notes))


@demo_blueprint.post("/notes")
@csrf_protect
@login_required
async def post_note() -> ResponseReturnValue:
    form = await request.form
    title = form.get("title", "").strip()[:200]
    if title:
        note = Note(title=title, body=form.get("body", "")[:10_000], owner=current_user())
        _create(note, current_user())
    return redirect(url_for("demo.notes_page"))


@demo_blueprint.post("/notes/<int:note_id>/delete")
@csrf_protect
async def delete_note(note_id: int) -> ResponseReturnValue:
    user = current_user()
    note = Note.readable_query(user).where(Note.id == note_id).get_or_none()
    if note is not None:
        _delete(note, user)
    return redirect(url_for("demo.notes_page"))
