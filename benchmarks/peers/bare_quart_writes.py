"""Peer of the `writes` section: one create, as a careful hand-written Quart app on
Hypercorn does it, to measure the records API against.

`POST /messages` parses the JSON body, looks the signed session cookie (Quart's own,
signed with itsdangerous, holding a random token as the runtime's does) up in a
sessions table joined to its user, checks that the session has not expired, validates
one text field, inserts one row in a transaction and answers the row as JSON (201).
No rules, hooks, events or realtime: the floor a create costs on this stack.

The database is `BENCH_DATABASE_URL` (postgresql://…) when set, else the SQLite file
`BENCH_SQLITE_PATH` with the runtime's pragmas and IMMEDIATE transactions. At start it
makes its tables, one user and one session, then prints `port=<port>` and
`cookie=<Cookie header value>` for the load client.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import os
import secrets
import socket
from typing import Any
from urllib.parse import urlsplit

import peewee
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, Response, jsonify, request, session

from runtime.db import SQLITE_PRAGMAS  # the same file settings as the runtime's

TEXT_LIMIT = 500  # the demo's `messages.text`
SESSION_KEY = "sid"

database = peewee.DatabaseProxy()


def open_database() -> peewee.Database:
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        parts = urlsplit(url)
        return peewee.PostgresqlDatabase(
            parts.path.lstrip("/"),
            host=parts.hostname,
            port=parts.port,
            user=parts.username,
            password=parts.password,
            prefer_psycopg3=True,
        )
    return peewee.SqliteDatabase(
        os.environ["BENCH_SQLITE_PATH"], pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE"
    )


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class Model(peewee.Model):  # type: ignore[misc]
    class Meta:
        database = database


class User(Model):
    username = peewee.CharField(max_length=150, unique=True)


class AuthSession(Model):
    token_hash = peewee.CharField(max_length=64, primary_key=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE")
    expires_at = peewee.DateTimeField()


class Message(Model):
    text = peewee.CharField(max_length=TEXT_LIMIT)
    author = peewee.ForeignKeyField(User, on_delete="CASCADE")
    created_at = peewee.DateTimeField(default=utcnow)


app = Quart(__name__)
app.secret_key = secrets.token_urlsafe(32)


def error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


def current_user_id() -> int | None:
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token or len(token) > 128:
        return None
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    row = (
        AuthSession.select(AuthSession.expires_at, User.id)
        .join(User)
        .where(AuthSession.token_hash == token_hash)
        .tuples()
        .first()
    )
    if row is None or row[0] <= utcnow():
        return None
    user_id: int = row[1]
    return user_id


@app.post("/messages")
async def create() -> tuple[Response, int]:
    body: Any = await request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object")
    author = current_user_id()
    if author is None:
        return error(401, "log in first")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > TEXT_LIMIT:
        return error(400, f"text: a non-empty string of at most {TEXT_LIMIT} characters")
    with database.atomic():
        message = Message.create(text=text, author=author, created_at=utcnow())
    row = {
        "id": message.id,
        "text": message.text,
        "author": author,
        "created_at": message.created_at.isoformat(),
    }
    return jsonify(row), 201


def seed() -> str:
    """The tables, a user and a session; the cookie that names the session."""
    database.create_tables([User, AuthSession, Message])
    user = User.create(username="bench")
    token = secrets.token_urlsafe(32)
    AuthSession.create(
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        user=user,
        expires_at=utcnow() + datetime.timedelta(days=1),
    )
    serializer = app.session_interface.get_signing_serializer(app)
    assert serializer is not None  # the secret key is set
    return f"{app.config['SESSION_COOKIE_NAME']}={serializer.dumps({SESSION_KEY: token})}"


async def main() -> None:
    database.initialize(open_database())
    database.connect()
    cookie = seed()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = Config()
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    config.accesslog = None
    config.loglevel = "WARNING"

    @app.before_serving
    async def announce() -> None:
        print(f"port={sock.getsockname()[1]} cookie={cookie}", flush=True)

    await serve(app, config)


if __name__ == "__main__":
    asyncio.run(main())
