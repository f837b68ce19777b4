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


def test_savepoints_are_statements_through_execute_sql() -> None:
    """runtime/db.py follows savepoints by the statements that open, release and roll
    them back, which Peewee sends through `execute_sql` (also for a DatabaseProxy)."""
    source = inspect.getsource(peewee._savepoint)
    for statement in ("SAVEPOINT %s", "RELEASE SAVEPOINT %s", "ROLLBACK TO SAVEPOINT %s"):
        assert f"self.db.execute_sql('{statement};'" in source, f"{statement} is sent otherwise"
    assert "self.execute_sql(" in inspect.getsource(peewee.Database.execute)
    for name in ("begin", "commit", "rollback", "execute_sql", "in_transaction", "atomic"):
        assert callable(getattr(peewee.Database, name, None)), f"Database.{name} is gone"
    assert "obj" in peewee.Proxy.__slots__, "a proxy no longer keeps its database in .obj"


def test_postgresql_has_what_tracking_uses() -> None:
    """Which driver, and whether COMMIT will roll back (an aborted transaction)."""
    assert "prefer_psycopg3" in inspect.getsource(peewee.PostgresqlDatabase.init)
    for adapter in (peewee.Psycopg2Adapter, peewee.Psycopg3Adapter):
        assert callable(getattr(adapter, "txn_status", None)), f"{adapter.__name__}.txn_status"
    assert hasattr(peewee.Psycopg3Adapter, "txn_inerror"), "Psycopg3Adapter.txn_inerror is gone"
    db = peewee.PostgresqlDatabase(None)
    assert hasattr(db, "_adapter") and hasattr(db._state, "conn")


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
    # What an insert returns where the database has RETURNING (bulk_create reads it).
    assert insert._query_type == peewee.Insert.SIMPLE
    assert _Thing.insert_many([{"name": "x"}])._query_type == peewee.Insert.MULTI
    assert "zip(res, batch)" in inspect.getsource(peewee.Model.bulk_create)


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
