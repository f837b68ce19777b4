"""`--app module:attribute`: finding an app of your own to serve.

The module is imported with the current directory on `sys.path` (as `python -m` and
Flask's `--app` do); the attribute is a Quart app, or a function that takes no
arguments and returns one (an application factory). A module alone (`--app polls`)
means its `app`, else its own `create_app()` (as Flask and uvicorn look). A value that
names nothing of the kind is an `AppNotFound` with one line saying what is wrong; an
exception raised by the app's own code while it is imported or built is left as it
is, traceback and all.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from types import ModuleType

from quart import Quart

__all__ = ["AppNotFound", "load_app"]


class AppNotFound(Exception):
    """`--app` names no app: the message is one line for the operator."""


def load_app(spec: str) -> Quart:
    """The Quart app that `spec` (`module:attribute`, or `module`) names."""
    module_name, colon, attribute = spec.partition(":")
    if not module_name or (colon and not attribute):
        raise AppNotFound(f"--app {spec!r}: expected module:attribute, e.g. myapp:app")
    module = _import(spec, module_name)
    if not attribute:
        attribute = _default_attribute(spec, module, module_name)
    target = _attribute(spec, module, module_name, attribute)
    if isinstance(target, Quart):
        return target
    return _built_by(spec, attribute, target)


def _import(spec: str, module_name: str) -> ModuleType:
    """The module, imported with the current directory on `sys.path`."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise AppNotFound(f"--app {spec!r}: no module named {missing!r} in {here}") from None
        raise  # the app's own import of something missing: its traceback says where


def _default_attribute(spec: str, module: ModuleType, module_name: str) -> str:
    """`app` if the module has one, else `create_app` if it defines that factory (the
    runtime's own `create_app`, imported to build the app, is not one of its own)."""
    from .app import create_app as runtimes_own

    if hasattr(module, "app"):
        return "app"
    if getattr(module, "create_app", runtimes_own) is not runtimes_own:
        return "create_app"
    raise AppNotFound(f"--app {spec!r}: {module_name} has neither `app` nor `create_app()`")


def _attribute(spec: str, module: ModuleType, module_name: str, attribute: str) -> object:
    """What the dotted `attribute` names in `module`."""
    target: object = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise AppNotFound(f"--app {spec!r}: {module_name} has no attribute {attribute!r}")
        target = getattr(target, part)
    return target


def _built_by(spec: str, attribute: str, factory: object) -> Quart:
    """The app that `factory`, a function of no arguments, returns."""
    if not inspect.isfunction(factory) and not inspect.ismethod(factory):
        kind = type(factory).__name__
        raise AppNotFound(f"--app {spec!r}: {attribute} is a {kind}, not a Quart app or factory")
    try:
        inspect.signature(factory).bind()
    except TypeError:
        raise AppNotFound(
            f"--app {spec!r}: {attribute}() needs arguments; a factory takes none"
        ) from None
    app = factory()
    if not isinstance(app, Quart):
        kind = type(app).__name__
        raise AppNotFound(f"--app {spec!r}: {attribute}() returned a {kind}, not a Quart app")
    return app
