"""A difference between a model and its table, and who may make it."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import peewee

__all__ = ["Change", "Safety"]


class Safety(enum.Enum):
    """Who may make a change."""

    AUTOMATIC = "automatic"  # adds only: start-up makes it (database.auto_migrate)
    MIGRATE = "migrate"  # loses nothing, but is not made at start-up: `migrate` makes it
    DESTRUCTIVE = "destructive"  # drops or narrows: `migrate --destructive` makes it
    REFUSED = "refused"  # cannot be made as the rows are: the model or the rows must change


@dataclass(frozen=True, eq=False)
class Change:
    """One difference between a model and its table."""

    model: type[peewee.Model]
    column: str | None  # the field's name; None for the table or a whole index
    todo: str  # 'add column "color"'
    done: str  # 'added column "color"'
    problem: str  # the difference, as start-up states it
    safety: Safety
    make: Callable[[], None] | None = None  # runs the change's statements
    breaks_serving: bool = True  # False: serving works meanwhile (start-up only warns)
    advice: str = ""  # what else may fix it, before the command to run

    @property
    def subject(self) -> str:
        name = self.model.__name__
        return f"{name}.{self.column}" if self.column else name
