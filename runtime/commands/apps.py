"""The app a command works on: the runtime's own (the demo while app.demo is true) or
`--app`'s, and what the banner and create-user say about where its data is."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..config import Config

__all__ = [
    "DEFAULT_CONFIG",
    "load_own_app",
    "new_database_note",
    "new_sqlite_file",
    "runtime_app",
    "where",
]


DEFAULT_CONFIG = "config.toml"  # the one configuration file that may be absent


def runtime_app(config: Config) -> Any:
    """The runtime's own app (the demo while app.demo is true), else None, said why."""
    from ..app import create_app
    from ..demo import create_demo_app

    try:
        return create_demo_app(config) if config.app.demo else create_app(config)
    except RuntimeError as exc:  # the demo's pages are not there (an installed wheel)
        print(f"error: {exc}; or set app.demo = false", file=sys.stderr)
        return None


def load_own_app(config_path: str, spec: str) -> Any:
    """`--app`'s app, else None, said why. Its `create_app()` reads the same
    configuration: CONFIG names the file for the module imported here."""
    from ..app_loader import AppNotFound, load_app

    if Path(config_path).is_file():
        os.environ["CONFIG"] = os.path.abspath(config_path)
    else:  # only the default may be absent (checked in main): the defaults, then
        os.environ.pop("CONFIG", None)
    try:
        return load_app(spec)
    except AppNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def new_sqlite_file(config: Config) -> str | None:
    """The SQLite file's absolute path if it is not there yet (start-up creates it):
    serving from another folder than usual starts on an empty database, and says so."""
    path = config.database.path
    if not config.database.url and path != ":memory:" and not Path(path).exists():
        return os.path.abspath(path)
    return None


def new_database_note(path: str) -> str:
    return f"note: no SQLite database was at {path}: created a new, empty one"


def where(config: Config, config_path: str, new_database: str | None = None) -> str:
    """The banner's lines naming the database, the broker and the configuration file."""
    from ..database_url import redacted

    if config.database.url:
        database = redacted(config.database.url)
    else:
        path = config.database.path
        database = path if path == ":memory:" else f"sqlite {os.path.abspath(path)}"
    used = os.path.abspath(config_path) if Path(config_path).is_file() else "none"
    lines = (
        f"  Database: {database}\n"
        f"  Broker:   {redacted(config.realtime.broker)}\n"
        f"  Config:   {used}"
    )
    return lines + (f"\n  {new_database_note(new_database)}" if new_database else "")
