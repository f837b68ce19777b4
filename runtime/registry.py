"""The collections by name: each `BaseModel` subclass registers itself here when it is
defined (runtime.base_model, whose `collection()` and `collections()` read it typed);
below the models, so that what needs a model by its table's name (constraint errors)
does not import the models' module."""

from __future__ import annotations

import peewee

__all__ = ["register", "registered", "registered_by_name"]

_registry: dict[str, type[peewee.Model]] = {}


def register(name: str, model: type[peewee.Model]) -> None:
    """`model` is the collection `name` (runtime.base_model refuses a clash first)."""
    _registry[name] = model


def registered(name: str) -> type[peewee.Model] | None:
    return _registry.get(name)


def registered_by_name() -> dict[str, type[peewee.Model]]:
    """Every registered collection by name (a copy)."""
    return dict(_registry)
