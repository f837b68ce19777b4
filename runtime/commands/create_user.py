"""`create-user NAME [--admin]`: the password from RUNTIME_PASSWORD or a prompt."""

from __future__ import annotations

import getpass
import os
import sys

from ..config import Config
from .apps import new_database_note

__all__ = ["create_user_command"]


def create_user_command(
    config: Config, name: str, *, admin: bool, new_database: str | None = None
) -> int:
    from ..app import create_app
    from ..users import User, create_user

    create_app(config)
    if User.get_or_none(User.username == name) is not None:
        print(f"error: a user named {name!r} exists already", file=sys.stderr)
        return 1
    password = os.environ.get("RUNTIME_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            print("error: no terminal to ask for a password; set RUNTIME_PASSWORD", file=sys.stderr)
            return 1
        password = getpass.getpass(f"Password for {name}: ")
        if password != getpass.getpass("Again: "):
            print("error: the passwords differ", file=sys.stderr)
            return 1
    if not password or not 1 <= len(name) <= 64:
        print("error: the name must be 1-64 characters and the password not empty", file=sys.stderr)
        return 1
    create_user(name, password, is_admin=admin)
    print(f"created {'admin ' if admin else ''}user {name!r}")
    if new_database:
        print(new_database_note(new_database), file=sys.stderr)
    return 0
