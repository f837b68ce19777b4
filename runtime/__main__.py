"""Command line: `python -m runtime [--config PATH] serve [--app module[:attribute]] |
migrate [--app module[:attribute]] [--dry-run] [--destructive] | create-user NAME
[--admin]`; `--config` may also come after the command (then it wins)."""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import Config, ConfigError, load_config

__all__ = ["main"]

DEFAULT_CONFIG = "config.toml"


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
    new_database = _new_sqlite_file(config)
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
        for line in exc.lines(_migrate_command(args)):
            print(f"error: {line}", file=sys.stderr)
        return 2


def _command(
    args: argparse.Namespace, config: Config, new_database: str | None, argv: list[str] | None
) -> int:
    if args.command == "create-user":
        return _create_user(config, args.name, admin=args.admin, new_database=new_database)
    if args.command == "migrate":
        return _migrate(config, args)
    problem = _serve_problem(config, args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    listen = _Listen(args.host, args.port, args.workers, args.socket_fd, argv)
    if args.reload_fd is not None:
        listen.under_reloader(args.reload_fd, debug=args.debug)
    elif args.reload or args.debug:
        from .reloader import serve_reloading

        return serve_reloading(args.host, args.port, listen.argv, args.config)
    if args.app is not None:
        return _serve_app_of_your_own(args.config, args.app, listen, config, new_database)
    return _serve(config, listen, args.config, new_database)


def _migrate_command(args: argparse.Namespace) -> str:
    """How to run migrate for the app this command line serves."""
    words = ["python", "-m", "runtime", "migrate"]
    if getattr(args, "app", None):
        words += ["--app", args.app]
    if args.config != DEFAULT_CONFIG:
        words += ["--config", args.config]
    return shlex.join(words)


def _migrate(config: Config, args: argparse.Namespace) -> int:
    """`migrate`: the app's models, as `serve` would serve them, brought to the database."""
    from .schema import migrate_models, schema_check_deferred
    from .users import Session, User

    with schema_check_deferred():  # its create_app() leaves the tables to this command
        if args.app is not None:
            app = _load_own_app(args.config, args.app)
            if app is None:
                return 2
        else:
            app = _runtime_app(config)
            if app is None:
                return 2
    served = app.extensions["runtime"].models
    models = [User, Session, *sorted(served, key=lambda m: m.__name__)]
    return migrate_models(
        models,
        dry_run=args.dry_run,
        destructive=args.destructive,
        warn=lambda line: print(line, file=sys.stderr),
    )


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


def _serve_problem(config: Config, args: argparse.Namespace) -> str | None:
    """The line that refuses this `serve`, or None."""
    problem = _workers_problem(config, args.workers)
    if problem:
        return f"configuration error: {problem}"
    from .development import development_refusal

    problem = development_refusal(
        config.app.env, args.host, reload=args.reload, debug=args.debug, workers=args.workers
    )
    return f"error: {problem}" if problem else None


def _workers_problem(config: Config, workers: int) -> str | None:
    from .workers import needs_shared_broker

    if workers < 1:
        return f"--workers: {workers} is not a number of processes (1 or more)"
    return needs_shared_broker(config.realtime.broker, workers)


class _Listen:
    """Where and how `serve` listens: one process; the parent of `workers`; or a worker
    given its parent's socket."""

    def __init__(
        self, host: str, port: int, workers: int, socket_fd: int | None, argv: list[str] | None
    ) -> None:
        self.host, self.port, self.workers, self.socket_fd = host, port, workers, socket_fd
        self.argv = sys.argv[1:] if argv is None else argv
        self.reload_fd: int | None = None
        self.debug = False

    def under_reloader(self, fd: int, *, debug: bool) -> None:
        """The server that `--reload` runs: on the watcher's socket, banner and all."""
        self.reload_fd, self.debug = fd, debug

    def mode(self) -> str:
        """The banner's line for a server under the watcher."""
        if self.reload_fd is None:
            return ""
        if self.debug:
            return "\n  Mode:     debug (reload, DEBUG log, tracebacks in 500 answers)"
        return "\n  Mode:     reload"

    def run(self, app: Any, banner: Callable[[str, int], None]) -> int:
        from .server import run
        from .workers import bind, inherited_socket, run_workers, worker_command

        if self.reload_fd is not None:
            from .development import for_development

            for_development(app, debug=self.debug)
            sock = inherited_socket(self.reload_fd)
            run(app, sock=sock, ready=lambda port: banner(self.host, port))
            return 0
        if self.socket_fd is not None:  # a worker: its parent printed the banner
            run(app, sock=inherited_socket(self.socket_fd))
            return 0
        if self.workers == 1:
            run(app, self.host, self.port, ready=lambda port: banner(self.host, port))
            return 0
        sock = bind(self.host, self.port)
        banner(self.host, sock.getsockname()[1])
        return run_workers(worker_command(self.argv), sock, self.workers)


def _create_user(config: Config, name: str, *, admin: bool, new_database: str | None = None) -> int:
    from .app import create_app
    from .users import User, create_user

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
        print(_new_database_note(new_database), file=sys.stderr)
    return 0


def _ensure_demo_user(config: Config) -> str:
    """Create the demo user on first start; its credentials live in var/ beside the data."""
    from .users import User, create_user

    credentials = Path(config.database.path).parent / "demo-credentials.txt"
    if User.select().count() == 0:
        password = secrets.token_urlsafe(9)
        create_user("demo", password)
        credentials.parent.mkdir(parents=True, exist_ok=True)  # var/, also beside PostgreSQL
        credentials.write_text(f"username: demo\npassword: {password}\n")
        credentials.chmod(0o600)
    if credentials.is_file():
        return credentials.read_text().strip().replace("\n", ", ")
    return "log in with a user made by `python -m runtime create-user NAME`"


def _new_sqlite_file(config: Config) -> str | None:
    """The SQLite file's absolute path if it is not there yet (start-up creates it):
    serving from another folder than usual starts on an empty database, and says so."""
    path = config.database.path
    if not config.database.url and path != ":memory:" and not Path(path).exists():
        return os.path.abspath(path)
    return None


def _new_database_note(path: str) -> str:
    return f"note: no SQLite database was at {path}: created a new, empty one"


def _where(config: Config, config_path: str, new_database: str | None = None) -> str:
    """The banner's lines naming the database, the broker and the configuration file."""
    from .database_url import redacted

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
    return lines + (f"\n  {_new_database_note(new_database)}" if new_database else "")


def _serve(
    config: Config, listen: _Listen, config_path: str, new_database: str | None = None
) -> int:
    """The runtime's own app: the demo while app.demo is true."""
    app = _runtime_app(config)
    if app is None:
        return 2
    worker = listen.socket_fd is not None  # its parent made the demo user
    demo_login = _ensure_demo_user(config) if config.app.demo and not worker else ""

    def banner(host: str, bound_port: int) -> None:
        print(f"\n  Serving on http://{host}:{bound_port}/{_workers(listen)}", flush=True)
        print(_where(config, config_path, new_database) + listen.mode(), flush=True)
        if demo_login:
            print(f"  Log in at http://{host}:{bound_port}/login  ({demo_login})\n", flush=True)

    return listen.run(app, banner)


def _runtime_app(config: Config) -> Any:
    """The runtime's own app (the demo while app.demo is true), else None, said why."""
    from .app import create_app
    from .demo import create_demo_app

    try:
        return create_demo_app(config) if config.app.demo else create_app(config)
    except RuntimeError as exc:  # the demo's pages are not there (an installed wheel)
        print(f"error: {exc}; or set app.demo = false", file=sys.stderr)
        return None


def _workers(listen: _Listen) -> str:
    return f"  ({listen.workers} workers)" if listen.workers > 1 else ""


def _serve_app_of_your_own(
    config_path: str,
    spec: str,
    listen: _Listen,
    config: Config,
    new_database: str | None = None,
) -> int:
    """`--app`: never the demo. The app's `create_app()` reads the same configuration:
    CONFIG names the file for the module imported here."""
    app = _load_own_app(config_path, spec)
    if app is None:
        return 2
    state = app.extensions.get("runtime")
    config = getattr(state, "config", config)  # what the app's create_app() read

    def banner(host: str, bound_port: int) -> None:
        print(f"\n  Serving on http://{host}:{bound_port}/  ({spec}){_workers(listen)}", flush=True)
        print(_where(config, config_path, new_database) + listen.mode() + "\n", flush=True)

    return listen.run(app, banner)


def _load_own_app(config_path: str, spec: str) -> Any:
    """`--app`'s app, else None, said why. Its `create_app()` reads the same
    configuration: CONFIG names the file for the module imported here."""
    from .app_loader import AppNotFound, load_app

    if Path(config_path).is_file():
        os.environ["CONFIG"] = os.path.abspath(config_path)
    else:  # only the default may be absent (checked in main): the defaults, then
        os.environ.pop("CONFIG", None)
    try:
        return load_app(spec)
    except AppNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main())
