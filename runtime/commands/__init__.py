"""The command line's commands (`python -m runtime`, runtime/__main__.py parses it)."""

from .apps import DEFAULT_CONFIG, new_sqlite_file
from .create_user import create_user_command
from .migrate import migrate, migrate_command
from .serve import Listen, serve_own_app, serve_problem, serve_runtime_app

__all__ = [
    "DEFAULT_CONFIG",
    "Listen",
    "create_user_command",
    "migrate",
    "migrate_command",
    "new_sqlite_file",
    "serve_own_app",
    "serve_problem",
    "serve_runtime_app",
]
