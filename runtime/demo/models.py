"""The demo's collections: `messages` (public read, authenticated create, owner update
and delete) and `notes` (owner only). Importing this module registers them, so only the
demo imports it (see `runtime.demo`)."""

from __future__ import annotations

from typing import Any

import peewee

from ..base_model import BaseModel
from ..users import User, utcnow

__all__ = ["TEXT_LIMIT", "Message", "Note"]

TEXT_LIMIT = 500


class Message(BaseModel):
    text = peewee.CharField(max_length=TEXT_LIMIT)
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
