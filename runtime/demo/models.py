"""The demo's collections: `messages` (public read, authenticated create, owner update
and delete) and `notes` (owner only). Importing this module registers them, so only the
demo imports it (see `runtime.demo`)."""

from __future__ import annotations

import peewee

from ..base_model import BaseModel
from ..users import User, utcnow

__all__ = ["TEXT_LIMIT", "Message", "Note"]

TEXT_LIMIT = 500


class Message(BaseModel):
    text = peewee.CharField(max_length=TEXT_LIMIT)
    # Pages show who wrote a message with `expand=author` (docs/api.md, "Expand"): the
    # author's public fields read with it, so a renamed user shows renamed.
    author = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="messages")
    created_at = peewee.DateTimeField(default=utcnow)

    read_rule = "public"
    create_rule = "authenticated"  # anyone logged in may post,
    update_rule = delete_rule = "owner"  # only the author may edit or delete
    owner_field = "author"
    read_only = ("created_at",)

    class Meta:
        table_name = "messages"


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
