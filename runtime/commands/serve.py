"""`serve`: refusals said in one line, where and how it listens (one process, the parent
of workers, a worker, or the server `--reload` runs), and the banner."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Config
from .apps import load_own_app, runtime_app, where

__all__ = ["Listen", "serve_own_app", "serve_problem", "serve_runtime_app"]


def serve_problem(config: Config, args: argparse.Namespace) -> str | None:
    """The line that refuses this `serve`, or None."""
    problem = workers_problem(config, args.workers)
    if problem:
        return f"configuration error: {problem}"
    from ..development import development_refusal

    problem = development_refusal(
        config.app.env, args.host, reload=args.reload, debug=args.debug, workers=args.workers
    )
    return f"error: {problem}" if problem else None


def workers_problem(config: Config, workers: int) -> str | None:
    from ..workers import needs_shared_broker

    if workers < 1:
        return f"--workers: {workers} is not a number of processes (1 or more)"
    return needs_shared_broker(config.realtime.broker, workers)


class Listen:
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
        from ..server import run
        from ..workers import bind, inherited_socket, run_workers, worker_command

        if self.reload_fd is not None:
            from ..development import for_development

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


def serve_runtime_app(
    config: Config, listen: Listen, config_path: str, new_database: str | None = None
) -> int:
    """The runtime's own app: the demo while app.demo is true."""
    app = runtime_app(config)
    if app is None:
        return 2
    worker = listen.socket_fd is not None  # its parent made the demo user
    demo_login = ensure_demo_user(config) if config.app.demo and not worker else ""

    def banner(host: str, bound_port: int) -> None:
        print(f"\n  Serving on http://{host}:{bound_port}/{workers_note(listen)}", flush=True)
        print(where(config, config_path, new_database) + listen.mode(), flush=True)
        if demo_login:
            print(f"  Log in at http://{host}:{bound_port}/login  ({demo_login})\n", flush=True)

    return listen.run(app, banner)


def ensure_demo_user(config: Config) -> str:
    """Create the demo user on first start; its credentials live in var/ beside the data."""
    from ..users import User, create_user

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


def workers_note(listen: Listen) -> str:
    return f"  ({listen.workers} workers)" if listen.workers > 1 else ""


def serve_own_app(
    config_path: str,
    spec: str,
    listen: Listen,
    config: Config,
    new_database: str | None = None,
) -> int:
    """`--app`: never the demo. The app's `create_app()` reads the same configuration:
    CONFIG names the file for the module imported here."""
    app = load_own_app(config_path, spec)
    if app is None:
        return 2
    state = app.extensions.get("runtime")
    config = getattr(state, "config", config)  # what the app's create_app() read

    def banner(host: str, bound_port: int) -> None:
        print(
            f"\n  Serving on http://{host}:{bound_port}/  ({spec}){workers_note(listen)}",
            flush=True,
        )
        print(where(config, config_path, new_database) + listen.mode() + "\n", flush=True)

    return listen.run(app, banner)
