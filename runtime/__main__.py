"""Command line: `python -m runtime [--config PATH] serve [--app module[:attribute]] |
migrate [--app module[:attribute]] [--dry-run] [--destructive] | create-user NAME
[--admin]`; `--config` may also come after the command (then it wins)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .commands import (
    DEFAULT_CONFIG,
    Listen,
    create_user_command,
    migrate,
    migrate_command,
    new_sqlite_file,
    serve_own_app,
    serve_problem,
    serve_runtime_app,
)
from .config import Config, ConfigError, load_config

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runtime", description="The runtime: a Quart app with realtime pub/sub."
    )
    parser.add_argument(
        "--config",
        default=os.environ.get("CONFIG", DEFAULT_CONFIG),
        help="path of the TOML configuration (default: config.toml)",
    )
    # Each command takes --config too; given there, it is the one used (argparse sets a
    # command's options after the main ones), given nowhere, the main default stands.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument("--config", default=argparse.SUPPRESS, help="path of the TOML configuration")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve", parents=[after], help="serve the app (what `make run` does)"
    )
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument(
        "--workers",
        type=int,
        default=os.environ.get("WORKERS", "1"),  # a string: argparse checks it too
        help="server processes acting as one (more than 1 needs realtime.broker = "
        "redis://…: docs/scaling.md)",
    )
    serve.add_argument("--socket-fd", type=int, help=argparse.SUPPRESS)  # a worker's
    serve.add_argument("--reload-fd", type=int, help=argparse.SUPPRESS)  # under --reload
    serve.add_argument(
        "--reload",
        action="store_true",
        help="restart when a Python file or the configuration changes; templates are "
        "re-read as they change (development)",
    )
    serve.add_argument(
        "--debug",
        action="store_true",
        help="--reload, log level DEBUG and tracebacks in 500 answers (development only: "
        "refused with app.env = production or a host that is not loopback)",
    )
    serve.add_argument(
        "--app",
        metavar="MODULE[:ATTRIBUTE]",
        help="serve an app of your own: a Quart app or a factory of one, from a module "
        "imported from the current directory; a module alone means its `app`, else its "
        "`create_app()` (default: the runtime's own, the demo while app.demo is true)",
    )
    migrate = commands.add_parser(
        "migrate",
        parents=[after],
        help="bring the database's tables to the models (docs/models.md)",
    )
    migrate.add_argument(
        "--app", metavar="MODULE[:ATTRIBUTE]", help="the app whose models to migrate, as serve's"
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="print the SQL it would run; change nothing"
    )
    migrate.add_argument(
        "--destructive",
        action="store_true",
        help="also drop columns and indexes the models lack, retype columns, make them NOT NULL",
    )
    create = commands.add_parser(
        "create-user",
        parents=[after],
        help="create a user; the password comes from RUNTIME_PASSWORD or a prompt",
    )
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="make the user an administrator")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = _configuration(args)
    if config is None:
        return 2
    # Said once the start-up went through (a refusal stays one line): a new SQLite file.
    new_database = new_sqlite_file(config)
    from .db import DatabaseUnavailable
    from .ratelimit import StorageUnavailable
    from .realtime import BrokerUnavailable
    from .schema import SchemaMismatch

    try:
        return _command(args, config, new_database, argv)
    except (DatabaseUnavailable, BrokerUnavailable, StorageUnavailable) as exc:  # one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SchemaMismatch as exc:  # one line per difference, each naming the command
        for line in exc.lines(migrate_command(args)):
            print(f"error: {line}", file=sys.stderr)
        return 2


def _command(
    args: argparse.Namespace, config: Config, new_database: str | None, argv: list[str] | None
) -> int:
    if args.command == "create-user":
        return create_user_command(config, args.name, admin=args.admin, new_database=new_database)
    if args.command == "migrate":
        return migrate(config, args)
    problem = serve_problem(config, args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    listen = Listen(args.host, args.port, args.workers, args.socket_fd, argv)
    if args.reload_fd is not None:
        listen.under_reloader(args.reload_fd, debug=args.debug)
    elif args.reload or args.debug:
        from .reloader import serve_reloading

        return serve_reloading(args.host, args.port, listen.argv, args.config)
    if args.app is not None:
        return serve_own_app(args.config, args.app, listen, config, new_database)
    return serve_runtime_app(config, listen, args.config, new_database)


def _configuration(args: argparse.Namespace) -> Config | None:
    """The configuration `--config` names, or None once one line said why not."""
    if getattr(args, "debug", False):  # before reading it: the app's create_app() too
        os.environ["RUNTIME_APP_LOG_LEVEL"] = "debug"
    if args.config != DEFAULT_CONFIG and not Path(args.config).is_file():
        # Only the default may be absent (its defaults are the shipped ones): a file
        # named on purpose that is not there is a mistake, not a reason to run bare.
        print(f"configuration error: --config: no file {args.config!r}", file=sys.stderr)
        return None
    try:
        return load_config(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main())
