"""Users and their server-side sessions.

A session cookie names a row of `auth_sessions` (by a random token, stored hashed), so
the server can end it: logout, a password change and removing the user each delete
the rows, which makes every copy of the cookie worthless at once.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

import peewee

from .adapters.peewee_lookups import JoinedLookup
from .base_model import BaseModel
from .db import database
from .passwords import hash_password, hash_password_async, verify_password, verify_password_async

__all__ = ["Session", "User", "acreate_user", "create_user", "on_session_end", "utcnow"]

# Called with the token hash of every session that ends, whatever ended it (realtime
# closes that session's connections with 4401).
on_session_end: list[Callable[[str], None]] = []

# Checked against when the username is unknown, so that both failures take as long.
# Made at the first login, known name or not (not at import: it costs a hash, ~0.1 s of
# every process's start and every command's).
_DUMMY_PASSWORD = "not-a-real-password"
_dummy_hash: str | None = None


def _unknown_user_hash() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(_DUMMY_PASSWORD)
    return _dummy_hash


async def _unknown_user_hash_async() -> str:
    """The same, hashed off the event loop (passwords.py)."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await hash_password_async(_DUMMY_PASSWORD)
    return _dummy_hash


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _self_or_admin(user: Any, record: User) -> bool:
    return bool(user.is_admin or user.id == record.id)


class User(BaseModel):
    username = peewee.CharField(max_length=64, unique=True)
    password_hash = peewee.CharField()
    is_admin = peewee.BooleanField(default=False)
    created_at = peewee.DateTimeField(default=utcnow)

    read_rule = _self_or_admin
    write_rule = "nobody"  # managed with `python -m runtime create-user`, not the API
    hidden = ("password_hash",)

    class Meta:
        table_name = "users"

    # Each password method has an async twin (Django's naming) for request handlers:
    # it hashes off the event loop. The plain ones are for scripts and the CLI.

    def set_password(self, password: str) -> None:
        """Change the password and end every session of this user."""
        self._store_password(hash_password(password))

    async def aset_password(self, password: str) -> None:
        self._store_password(await hash_password_async(password))

    def _store_password(self, password_hash: str) -> None:
        self.password_hash = password_hash
        with database.atomic():
            self.save()
            self.end_sessions()

    def end_sessions(self) -> None:
        for auth in list(Session.select().where(Session.user == self.id)):
            auth.end()

    def delete_instance(self, recursive: bool = True, delete_nullable: bool = False) -> int:
        """Removing a user ends their sessions too.

        Recursive by default: the user's records are removed through the ORM, so each
        removal is announced (a database-level ON DELETE CASCADE would be silent).
        """
        with database.atomic():
            self.end_sessions()
            return super().delete_instance(recursive=recursive, delete_nullable=delete_nullable)

    def check_password(self, password: str) -> bool:
        return verify_password(self.password_hash, password)

    async def acheck_password(self, password: str) -> bool:
        return await verify_password_async(self.password_hash, password)

    @staticmethod
    def authenticate(username: str, password: str) -> User | None:
        unknown = _unknown_user_hash()  # before the lookup: the first login costs it either way
        user = User.get_or_none(User.username == username)
        stored = user.password_hash if user is not None else unknown
        return user if verify_password(stored, password) and user is not None else None

    @staticmethod
    async def aauthenticate(username: str, password: str) -> User | None:
        """The user these credentials name, or None; the same time either way."""
        unknown = await _unknown_user_hash_async()
        user = User.get_or_none(User.username == username)
        stored = user.password_hash if user is not None else unknown
        matches = await verify_password_async(stored, password)
        return user if matches and user is not None else None

    def public_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "is_admin": self.is_admin}


class Session(peewee.Model):
    """Not a collection: never readable through the API or realtime."""

    token_hash = peewee.CharField(max_length=64, primary_key=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="sessions")
    created_at = peewee.DateTimeField(default=utcnow)
    expires_at = peewee.DateTimeField()

    class Meta:
        database = database
        table_name = "auth_sessions"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def start(cls, user: User, lifetime: int) -> tuple[Session, str]:
        """A new session for `user`; returns it and the token for the cookie."""
        token = secrets.token_urlsafe(32)
        session = cls.create(
            token_hash=cls.hash_token(token),
            user=user,
            expires_at=utcnow() + datetime.timedelta(seconds=lifetime),
        )
        return session, token

    def end(self) -> None:
        self.delete_instance()
        for receiver in list(on_session_end):
            receiver(self.token_hash)

    @classmethod
    def resolve(cls, token: object) -> Session | None:
        """The live session a cookie's token names, with its user, or None."""
        if not isinstance(token, str) or not token or len(token) > 128:
            return None
        session: Session | None = _SESSION_LOOKUP.get(cls.hash_token(token))
        if session is None:
            return None
        if session.expires_at <= utcnow():
            session.end()
            return None
        return session


# On every request and realtime connection: its SQL rendered once (Peewee's building of
# it cost far more than the query).
_SESSION_LOOKUP = JoinedLookup(Session, Session.token_hash, Session.user)


def create_user(username: str, password: str, *, is_admin: bool = False) -> User:
    user: User = User.create(
        username=username, password_hash=hash_password(password), is_admin=is_admin
    )
    return user


async def acreate_user(username: str, password: str, *, is_admin: bool = False) -> User:
    password_hash = await hash_password_async(password)
    user: User = User.create(username=username, password_hash=password_hash, is_admin=is_admin)
    return user
