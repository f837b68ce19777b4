"""The parts of Peewee's insides the runtime relies on (pinned in pyproject.toml).

If one of these fails after an upgrade, the change capture in runtime/base_model.py and
runtime/db.py, or the access decisions in runtime/realtime/access.py, need a look before
the pin moves.
"""

from __future__ import annotations

import inspect

import peewee
import pytest

from runtime import BaseModel


class _Thing(BaseModel):
    name = peewee.CharField(default="a default")
    size = peewee.IntegerField(default=0)

    class Meta:
        table_name = "test_internal_things"


def test_savepoints_can_be_subclassed_as_runtime_db_does() -> None:
    assert inspect.isclass(peewee._savepoint), "peewee._savepoint is gone"
    for name in ("_begin", "commit", "rollback"):
        assert callable(getattr(peewee._savepoint, name, None)), f"_savepoint.{name} is gone"
    source = inspect.getsource(peewee._savepoint)
    assert "quoted_sid" in source and "self.db" in source, "_savepoint changed shape"


def test_write_queries_have_what_tracked_writes_use() -> None:
    assert callable(getattr(peewee._WriteQuery, "returning", None))
    assert callable(getattr(peewee._WriteQuery, "_execute", None))
    assert hasattr(peewee.ROW, "DICT")
    update = _Thing.update(name="x")
    assert isinstance(update, peewee.ModelUpdate) and hasattr(update, "_update")
    insert = _Thing.insert(name="x")
    assert isinstance(insert, peewee.ModelInsert)
    for name in ("_returning", "_row_type", "_as_rowcount"):
        assert hasattr(insert, name), f"ModelInsert.{name} is gone"
    assert callable(getattr(insert, "_pk_returning", None)), "ModelInsert._pk_returning is gone"


def test_a_model_built_without_defaults_holds_only_what_it_was_given() -> None:
    """access.py builds a record from an event's values as Peewee's cursor wrapper does."""
    thing = _Thing(__no_default__=1, size=3)
    assert thing.__data__ == {"size": 3}, "Model(__no_default__=1) applied defaults"
    assert isinstance(thing._dirty, set)
    source = inspect.getsource(peewee.ModelObjectCursorWrapper.process_row)
    assert "__no_default__" in source, "Peewee builds rows differently now"


@pytest.mark.parametrize("attribute", ["__data__", "_dirty", "__rel__"])
def test_model_instances_keep_their_state_where_the_runtime_looks(attribute: str) -> None:
    assert hasattr(_Thing(), attribute)
