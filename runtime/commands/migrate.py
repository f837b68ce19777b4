"""`migrate`: the models of the app `serve` would serve, brought to the database."""

from __future__ import annotations

import argparse
import shlex
import sys

from ..config import Config
from .apps import DEFAULT_CONFIG, load_own_app, runtime_app

__all__ = ["migrate", "migrate_command"]


def migrate_command(args: argparse.Namespace) -> str:
    """How to run migrate for the app this command line serves."""
    words = ["python", "-m", "runtime", "migrate"]
    if getattr(args, "app", None):
        words += ["--app", args.app]
    if args.config != DEFAULT_CONFIG:
        words += ["--config", args.config]
    return shlex.join(words)


def migrate(config: Config, args: argparse.Namespace) -> int:
    """`migrate`: the app's models, as `serve` would serve them, brought to the database."""
    from ..schema import migrate_models, schema_check_deferred

    with schema_check_deferred():  # its create_app() leaves the tables to this command
        if args.app is not None:
            app = load_own_app(args.config, args.app)
            if app is None:
                return 2
        else:
            app = runtime_app(config)
            if app is None:
                return 2
    return migrate_models(
        app.extensions["runtime"].tables(),
        dry_run=args.dry_run,
        destructive=args.destructive,
        warn=lambda line: print(line, file=sys.stderr),
    )
