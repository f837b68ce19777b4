"""The model instances read rules judge events by, built as the records API builds one
from a row. A hidden field the event does not carry (see `BaseModel.rule_reads_hidden`)
cannot be read from them: a rule that tries fails, loudly, rather than being judged on
a None the row does not hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...adapters.peewee import model_from_stored

if TYPE_CHECKING:
    from ...base_model import BaseModel

__all__ = ["HiddenFieldNotCarried", "event_record"]


def event_record(model: type[BaseModel], values: Mapping[str, Any]) -> BaseModel:
    """A model instance for rules to judge an event by, as the API builds one from a row.
    A hidden field the event does not carry (see `BaseModel.rule_reads_hidden`) cannot
    be read from it: a rule that tries fails, loudly, and its reader gets nothing,
    rather than being judged on a None the row does not hold."""
    record = model_from_stored(model, values)
    left_out = model.left_out_of_events()
    if left_out:
        record.__data__ = _Carried(record.__data__, model, left_out)
    return record


class HiddenFieldNotCarried(LookupError):
    """A read rule read a hidden field that events do not carry."""


class _Carried(dict[str, Any]):
    """An event record's values: reading a left-out hidden field raises."""

    __slots__ = ("_left_out", "_model")

    def __init__(
        self, values: dict[str, Any], model: type[BaseModel], left_out: tuple[str, ...]
    ) -> None:
        super().__init__(values)
        self._model = model
        self._left_out = left_out

    def get(self, key: str, default: Any = None) -> Any:
        self._refuse(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self._refuse(key)
        return super().__getitem__(key)

    def _refuse(self, key: str) -> None:
        if key in self._left_out:
            name = self._model.__name__
            raise HiddenFieldNotCarried(
                f"the read rule of {name} reads the hidden field {key!r}, which events "
                f"do not carry: add it to {name}.rule_reads_hidden"
            )
