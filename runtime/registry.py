"""The collections by name: each `BaseModel` subclass registers itself here when it is
defined (runtime.base_model, which names `collection()` and `collections()` too);
below the models, so that what needs a model by its table's name (constraint errors)
does not import the models' module."""

from __future__ import annotations

import peewee

__all__ = ["collection", "collections", "register"]

_registry: dict[str, type[peewee.Model]] = {}


def register(name: str, model: type[peewee.Model]) -> None:
    """`model` is the collection `name` (runtime.base_model refuses a clash first)."""
    _registry[name] = model


def collection(name: str) -> type[peewee.Model] | None:
    return _registry.get(name)


def collections() -> dict[str, type[peewee.Model]]:
    """Every registered collection by name (a copy)."""
    return dict(_registry)
