"""The parts of Peewee's insides the runtime relies on (pinned in pyproject.toml).

Each test names what changed when it fails. Most check what runtime/adapters/peewee.py
reaches for; the last few, what runtime/change_tracking.py and runtime/db.py rely on
without naming a private part (savepoints sent as statements, a proxy's `obj`). Re-read
those files against the new Peewee before the pin moves.
"""

from __future__ import annotations

import ast
import datetime
import decimal
import inspect
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest

from runtime.adapters.peewee import (
    ReturningDelete,
    ReturningInsert,
    ReturningUpdate,
    ReturningWrite,
    Rows,
    check_parts,
    commit_will_roll_back,
    create_index,
    index_parts,
    model_from_stored,
    sqlite_retype_column,
    write_values,
)
from runtime.adapters.peewee_lookups import JoinedLookup
from runtime.db import tracking_database
from tests.databases import PostgresServer

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
ADAPTER = RUNTIME / "adapters" / "peewee.py"
ADAPTERS = (
    ADAPTER,
    RUNTIME / "adapters" / "peewee_statements.py",
    RUNTIME / "adapters" / "peewee_lookups.py",
)

# Peewee's private names the adapter uses: no other module of the runtime may use them.
PRIVATE = (
    "_WriteQuery",
    "_execute",
    "_row_type",
    "_returning",
    "_pk_returning",
    "_as_rowcount",
    "_query_type",
    "_update",
    "_where",
    "_from",
    "_on_conflict",
    "_columns",
    "_insert",
    "_sort_key",
    "_coerce",
    "_cte_list",
    "_normalize_data",
    "__no_default__",
    "_dirty",
    "_state",
    "_adapter",
    "_update_column",
    "_create_index",
    "_expressions",
    "_unique",
    "_path",
)


class _Thing(peewee.Model):
    """A plain Peewee model: the adapter works for any, the runtime's or not."""

    name = peewee.CharField(unique=True)
    size = peewee.IntegerField(default=0)

    class Meta:
        table_name = "test_adapter_things"


@pytest.fixture
def sqlite() -> Any:
    db = peewee.SqliteDatabase(":memory:")
    with db.bind_ctx([_Thing]):
        db.create_tables([_Thing])
        yield db
    db.close()


def _handing_rows_to(seen: list[Rows], base: type[ReturningWrite]) -> Any:
    """`base`, keeping each list of rows it hands over in `seen`."""

    class Seeing(base):  # type: ignore[valid-type,misc]
        def _written(self, database: Any, write: Callable[[], Rows]) -> Rows:
            seen.append(write())
            return seen[-1]

    return Seeing


# -- ReturningWrite ----------------------------------------------------------------------


def test_queries_run_through_execute() -> None:
    source = inspect.getsource(peewee.BaseQuery.execute)
    assert "self._execute(database)" in source, (
        "Query.execute() no longer runs _execute(): ReturningWrite is bypassed and bulk "
        "writes announce nothing"
    )
    assert callable(getattr(peewee._WriteQuery, "_execute", None)), "_WriteQuery._execute is gone"


def test_a_write_query_can_return_every_column_as_dicts() -> None:
    assert hasattr(peewee.ROW, "DICT"), "peewee.ROW.DICT is gone"
    query = _Thing.update(name="x")
    assert hasattr(query, "_row_type"), "a write query no longer keeps its row type in _row_type"
    returning = peewee._WriteQuery.returning(query, *_Thing._meta.sorted_fields)
    assert returning is not query, "_WriteQuery.returning() no longer copies the query"
    assert not query._returning, "_WriteQuery.returning() changed the query it was given"
    assert returning._returning == tuple(_Thing._meta.sorted_fields), (
        "_WriteQuery.returning() no longer keeps its columns in _returning"
    )


def test_what_an_insert_keeps_about_itself() -> None:
    insert = _Thing.insert(name="x")
    for name in ("_returning", "_as_rowcount", "_query_type"):
        assert hasattr(insert, name), f"ModelInsert.{name} is gone"
    assert insert._pk_returning() == (_Thing.id,), (
        "ModelInsert._pk_returning() no longer gives the primary-key RETURNING it sets itself"
    )
    assert insert._query_type == peewee.Insert.SIMPLE, "one row is no longer Insert.SIMPLE"
    many = _Thing.insert_many([{"name": "x"}])
    assert many._query_type == peewee.Insert.MULTI, "several rows are no longer Insert.MULTI"
    assert "zip(res, batch)" in inspect.getsource(peewee.Model.bulk_create), (
        "bulk_create() reads an insert's keys back otherwise: see ReturningInsert._result()"
    )


def test_an_update_keeps_what_it_sets_in_update() -> None:
    update = _Thing.update(size=3)
    assert isinstance(getattr(update, "_update", None), dict), "ModelUpdate._update is gone"
    assert ReturningUpdate(_Thing, {_Thing.size: 3})._changed_fields() == ("size",)


def test_returning_writes_hand_over_whole_rows(sqlite: Any) -> None:
    seen: list[Rows] = []
    insert = _handing_rows_to(seen, ReturningInsert)
    assert insert(_Thing, insert=[{"name": "a"}, {"name": "b"}]).execute() == 2  # last row id
    assert seen == [[{"id": 1, "name": "a", "size": 0}, {"id": 2, "name": "b", "size": 0}]]
    update = _handing_rows_to(seen, ReturningUpdate)
    assert update(_Thing, {_Thing.size: 5}).where(_Thing.name == "b").execute() == 1
    assert seen[-1] == [{"id": 2, "name": "b", "size": 5}]
    delete = _handing_rows_to(seen, ReturningDelete)
    assert delete(_Thing).where(_Thing.name == "a").execute() == 1
    assert seen[-1] == [{"id": 1, "name": "a", "size": 0}]
    # A query with a returning() of its own runs as Peewee runs it, and hands nothing over.
    query = update(_Thing, {_Thing.size: 6}).returning(_Thing.name)
    assert [row.name for row in query.execute()] == ["b"]
    assert len(seen) == 3


class _Typed(peewee.Model):
    """Values Peewee converts when it reads them (python_value)."""

    name = peewee.CharField()
    when = peewee.DateTimeField(null=True)
    price = peewee.DecimalField(decimal_places=2, null=True)
    done = peewee.BooleanField(default=False)

    class Meta:
        table_name = 'test adapter "typed"'  # quotes in a name are quoted


def _rows_before_both_ways(database: Any, fields: tuple[str, ...], key: int) -> tuple[Any, Any]:
    """The values before an update by its key, as the fast path reads them and as a
    query Peewee builds reads them."""
    by_key = ReturningUpdate(_Typed, {_Typed.name: "x"}).where(_Typed.id == key)
    by_query = ReturningUpdate(_Typed, {_Typed.name: "x"}).where(
        (_Typed.id == key) & (_Typed.id > 0)
    )
    return by_key._rows_before(database, fields), by_query._rows_before(database, fields)


def test_an_update_reads_its_rows_before_by_key_as_peewee_reads_them(sqlite: Any) -> None:
    update = _Thing.update(size=1).where(_Thing.size == 0)
    assert isinstance(getattr(update, "_where", None), peewee.Expression), (
        "ModelUpdate no longer keeps its WHERE in _where"
    )
    assert getattr(update, "_from", False) is None, "ModelUpdate no longer keeps FROM in _from"
    expression = _Typed.id == 1
    assert (expression.lhs, expression.op, expression.rhs) == (_Typed.id, peewee.OP.EQ, 1), (
        "Expression no longer keeps lhs, op and rhs: the update by key reads through Peewee"
    )
    assert sqlite.quote == '""' and sqlite.param == "?" and sqlite.for_update is False
    with sqlite.bind_ctx([_Typed]):
        sqlite.create_tables([_Typed])
        when = datetime.datetime(2024, 6, 2, 17, 30)
        row = _Typed.create(name="a", when=when, price=decimal.Decimal("1.50"), done=True)
        fields = ("name", "when", "price", "done")
        fast, built = _rows_before_both_ways(sqlite, fields, row.id)
        assert (
            fast
            == built
            == {row.id: {"name": "a", "when": when, "price": decimal.Decimal("1.50"), "done": True}}
        )
        assert _rows_before_both_ways(sqlite, fields, row.id + 1) == ({}, {})


def test_an_update_reads_and_locks_its_rows_before_on_postgresql(
    postgres: PostgresServer,
) -> None:
    url = postgres.database()
    db = tracking_database(url)
    try:
        assert db.quote == '""' and db.param == "%s" and db.for_update is True
        with db.bind_ctx([_Typed]):
            db.create_tables([_Typed])
            row = _Typed.create(name="a", done=True)
            with db.atomic():
                fast, built = _rows_before_both_ways(db, ("name", "done"), row.id)
            assert fast == built == {row.id: {"name": "a", "done": True}}
    finally:
        db.close()
        postgres.drop(url)


# -- write_values ------------------------------------------------------------------------


def test_write_values_are_what_peewee_writes() -> None:
    for method in (peewee.Model.update, peewee.Model.insert):
        assert "cls._normalize_data(__data, " in inspect.getsource(method), (
            f"Model.{method.__name__}() builds what it writes otherwise: see write_values()"
        )
    values = write_values(_Thing, None, {"name": "x"})
    assert [(field.name, value) for field, value in values.items()] == [("name", "x")]


# -- model_from_stored -------------------------------------------------------------------


def test_a_model_from_stored_values_holds_only_what_it_was_given() -> None:
    source = inspect.getsource(peewee.ModelObjectCursorWrapper.process_row)
    assert "__no_default__=1" in source and "_dirty.clear()" in source, (
        "Peewee builds a model from a row otherwise now: see model_from_stored()"
    )
    thing = model_from_stored(_Thing, {"size": 3})
    assert thing.__data__ == {"size": 3}, "Model(__no_default__=1) applied defaults"
    assert not thing.is_dirty(), "a model built from stored values has changed fields"


# -- commit_will_roll_back ---------------------------------------------------------------


def test_postgresql_says_whether_a_transaction_was_aborted() -> None:
    for adapter in (peewee.Psycopg2Adapter, peewee.Psycopg3Adapter):
        assert callable(getattr(adapter, "txn_status", None)), f"{adapter.__name__}.txn_status"
    assert hasattr(peewee.Psycopg3Adapter, "txn_inerror"), "Psycopg3Adapter.txn_inerror is gone"
    db = peewee.PostgresqlDatabase(None)
    assert hasattr(db, "_adapter"), "PostgresqlDatabase._adapter is gone"
    assert hasattr(db._state, "conn"), "a database no longer keeps its connection in _state.conn"


def test_commit_will_roll_back_after_an_error(postgres: PostgresServer) -> None:
    url = postgres.database()
    db = tracking_database(url)
    try:
        assert not commit_will_roll_back(db), "no connection yet, and COMMIT would roll back"
        with db.atomic():
            db.execute_sql("SELECT 1")
            assert not commit_will_roll_back(db), "COMMIT would roll back a healthy transaction"
            with pytest.raises(peewee.ProgrammingError):
                db.execute_sql("SELECT * FROM no_such_table")
            assert commit_will_roll_back(db), "an aborted transaction is no longer told apart"
    finally:
        db.close()
        postgres.drop(url)


# -- what the rest of the runtime reads or relies on -------------------------------------


def test_model_instances_keep_their_values_in_data() -> None:
    """base_model.py and rules.py read stored values from `__data__` (a foreign key's id
    without loading the record it names)."""
    assert _Thing(name="x").__data__ == {"name": "x", "size": 0}, "Model.__data__ moved"


def test_savepoints_are_statements_through_execute_sql() -> None:
    """runtime/change_tracking.py follows savepoints by the statements that open, release
    and roll them back, which Peewee sends through `execute_sql` (also for a proxy)."""
    source = inspect.getsource(peewee._savepoint)
    for statement in ("SAVEPOINT %s", "RELEASE SAVEPOINT %s", "ROLLBACK TO SAVEPOINT %s"):
        assert f"self.db.execute_sql('{statement};'" in source, f"{statement} is sent otherwise"
    assert "self.execute_sql(" in inspect.getsource(peewee.Database.execute)
    for name in ("begin", "commit", "rollback", "execute_sql", "in_transaction", "atomic"):
        assert callable(getattr(peewee.Database, name, None)), f"Database.{name} is gone"
    assert "obj" in peewee.Proxy.__slots__, "a proxy no longer keeps its database in .obj"


def test_postgresql_can_prefer_psycopg3() -> None:
    """runtime/db.py asks for psycopg 3, which reads BYTEA as bytes, as SQLite does."""
    assert "prefer_psycopg3" in inspect.getsource(peewee.PostgresqlDatabase.init)


def _names_used(path: Path) -> Iterator[tuple[int, str]]:
    """Each attribute and keyword name `path` uses, with its line (`peewee.x` in full)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            on_peewee = isinstance(node.value, ast.Name) and node.value.id == "peewee"
            yield node.lineno, f"peewee.{node.attr}" if on_peewee else node.attr
        elif isinstance(node, ast.keyword) and node.arg is not None:
            yield node.value.lineno, node.arg


def test_only_the_adapter_names_those_parts() -> None:
    adapter = "".join(path.read_text() for path in ADAPTERS)
    for name in PRIVATE:
        assert name in adapter, f"the adapter no longer uses {name}: drop it from PRIVATE"
    for path in sorted(RUNTIME.rglob("*.py")):
        if path in ADAPTERS:
            continue
        for line, name in _names_used(path):
            where = f"{path.relative_to(RUNTIME.parent)}:{line}"
            assert name not in PRIVATE and not name.startswith("peewee._"), (
                f"{where} uses {name}, a private part of Peewee: only "
                "runtime/adapters/peewee*.py may (an attribute of your own: another name)"
            )


# -- schema changes ----------------------------------------------------------------------


def test_a_models_indexes_are_named_and_made_as_create_table_makes_them(sqlite: Any) -> None:
    (index,) = _Thing._meta.fields_to_index()
    name, expressions, unique = index_parts(index)
    assert (name, expressions, unique) == ("_thing_name", [_Thing.name], True)
    sqlite.execute_sql(f'DROP INDEX "{name}"')
    create_index(_Thing, index)
    assert [(i.name, i.columns, i.unique) for i in sqlite.get_indexes("test_adapter_things")] == [
        (name, ["name"], True)
    ]


def test_sqlite_retype_column_rebuilds_the_table_with_its_rows_and_indexes(sqlite: Any) -> None:
    from playhouse.migrate import SqliteMigrator

    _Thing.create(name="a", size=3)
    text = peewee.TextField()
    text.bind(_Thing, "size")
    sqlite_retype_column(SqliteMigrator(sqlite), "test_adapter_things", "size", text)
    columns = {c.name: c.data_type for c in sqlite.get_columns("test_adapter_things")}
    assert columns == {"id": "INTEGER", "name": "VARCHAR(255)", "size": "TEXT"}
    assert [i.name for i in sqlite.get_indexes("test_adapter_things")] == ["_thing_name"]
    assert sqlite.execute_sql("SELECT name, size FROM test_adapter_things").fetchall() == [
        ("a", "3")
    ]


def test_a_checks_name_and_expression_are_read_as_peewee_builds_them() -> None:
    unnamed = peewee.Check("size >= 0")
    named = peewee.Check("size < 10", name="size_below_ten")
    assert check_parts(unnamed) == (None, "size >= 0")
    assert check_parts(named) == ("size_below_ten", "size < 10")
    assert check_parts(peewee.SQL("DEFAULT 0")) is None


# -- one-row writes, their SQL made once per shape ---------------------------------------


class _Owner(peewee.Model):
    name = peewee.CharField()

    class Meta:
        table_name = "test_adapter_owners"


class _Every(peewee.Model):
    """A field of each kind the runtime serves, each converted both ways by Peewee."""

    text = peewee.CharField()
    body = peewee.TextField(null=True)
    small = peewee.IntegerField(default=0)
    big = peewee.BigIntegerField(null=True)
    ratio = peewee.FloatField(null=True)
    price = peewee.DecimalField(max_digits=10, decimal_places=3, null=True)
    done = peewee.BooleanField(default=False)
    at = peewee.DateTimeField(default=datetime.datetime.now)
    day = peewee.DateField(null=True)
    clock = peewee.TimeField(null=True)
    uid = peewee.UUIDField(null=True)
    blob = peewee.BlobField(null=True)
    owner = peewee.ForeignKeyField(_Owner, null=True)

    class Meta:
        table_name = "test_adapter_every"


def _every_values(owner: Any) -> dict[str, Any]:
    return {
        "text": "tea",
        "body": "ünïcode ✓",
        "small": 7,
        "big": 2**40,
        "ratio": 0.5,
        "price": decimal.Decimal("12.500"),
        "done": True,
        "at": datetime.datetime(2024, 6, 2, 17, 30, 1, 5),
        "day": datetime.date(2024, 6, 2),
        "clock": datetime.time(17, 30),
        "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "blob": b"\x00\xff",
        "owner": owner,
    }


def _typed(rows: Rows) -> list[dict[str, tuple[type, Any]]]:
    return [{name: (type(value), value) for name, value in row.items()} for row in rows]


def _writes_both_ways(database: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write as Peewee builds it and through the cached statements: the same rows
    handed over (values and their types), the same answers, the same table."""
    from runtime.adapters import peewee as adapter
    from runtime.adapters import peewee_statements

    seen: dict[bool, list[Any]] = {}
    for cached in (False, True):
        peewee_statements._STATEMENTS.clear()
        if not cached:
            monkeypatch.setattr(adapter, "cached_statement", lambda *args: None)
        rows: list[Rows] = []
        insert = _handing_rows_to(rows, ReturningInsert)
        update = _handing_rows_to(rows, ReturningUpdate)
        with database.bind_ctx([_Owner, _Every]):
            database.drop_tables([_Every, _Owner])
            database.create_tables([_Owner, _Every])
            owner = _Owner.create(name="ann")
            answers = []
            for _ in range(2):  # the second of each shape takes the cached statement
                values = write_values(_Every, None, _every_values(owner))
                answers.append(insert(_Every, values).execute())
                answers.append(
                    insert(_Every, write_values(_Every, None, {"text": "bare"})).execute()
                )
            key = answers[0]
            for text in ("a", "b"):
                changed = write_values(_Every, None, {"text": text, "price": decimal.Decimal("1")})
                answers.append(update(_Every, changed).where(_Every.id == key).execute())
            # An expression is built by Peewee, whatever the cache holds.
            grow = write_values(_Every, None, {"small": _Every.small + 1})
            answers.append(update(_Every, grow).where(_Every.id == key).execute())
            # A "bare" row's `at` is its default, now(): the two runs differ there.
            table = [_without_now(dict(row)) for row in _Every.select().order_by(_Every.id).dicts()]
            handed = [[_without_now(row) for row in batch] for batch in rows]
            seen[cached] = [answers, _typed(table), [_typed(batch) for batch in handed]]
        monkeypatch.undo()
        if cached:
            kinds = {
                key[0] for key, statement in peewee_statements._STATEMENTS.items() if statement
            }
            assert kinds == {insert, update}, "a one-row insert or update was not cached"
    assert seen[True] == seen[False]


def _without_now(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not (k == "at" and row["text"] == "bare")}


def test_one_row_writes_through_cached_statements_are_peewees(
    sqlite: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = list(_Every._meta.sorted_fields)
    assert sorted(fields, key=lambda f: f._sort_key) == fields, (
        "Field._sort_key no longer orders fields as the model declares them"
    )
    assert peewee.Field.get_sort_key(_Every.text, None) == _Every.text._sort_key, (
        "Peewee no longer sorts a write's columns by Field._sort_key"
    )
    assert _Every.insert(text="x")._on_conflict is None and _Every.insert(text="x")._columns is None
    assert all(hasattr(field, "_coerce") for field in fields), "Field._coerce is gone"
    _writes_both_ways(sqlite, monkeypatch)


def test_one_row_writes_through_cached_statements_on_postgresql(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres.database()
    db = tracking_database(url)
    try:
        _writes_both_ways(db, monkeypatch)
    finally:
        db.close()
        postgres.drop(url)


# -- JoinedLookup ------------------------------------------------------------------------


def _looks_up_as_peewee(database: Any) -> None:
    """A key lookup with its join: the same models, values and value types as Peewee's
    own select builds, none marked changed; None where the inner join finds nothing."""
    lookup = JoinedLookup(_Every, _Every.text, _Every.owner)
    with database.bind_ctx([_Owner, _Every]):
        database.drop_tables([_Every, _Owner])
        database.create_tables([_Owner, _Every])
        owner = _Owner.create(name="ann")
        _Every.create(**_every_values(owner))
        _Every.create(text="orphan")
        for _ in range(2):  # the second from the SQL kept
            found = lookup.get("tea")
            assert found is not None
            expected = _Every.select(_Every, _Owner).join(_Owner).where(_Every.text == "tea").get()
            assert _typed([found.__data__]) == _typed([expected.__data__])
            assert _typed([found.owner.__data__]) == _typed([expected.owner.__data__])
            assert not found.is_dirty() and not found.owner.is_dirty()
            assert lookup.get("nobody") is None
            assert lookup.get("orphan") is None  # no owner to join


def test_a_joined_lookup_reads_rows_as_peewee_does(sqlite: Any) -> None:
    _looks_up_as_peewee(sqlite)


def test_a_joined_lookup_reads_rows_as_peewee_does_on_postgresql(
    postgres: PostgresServer,
) -> None:
    url = postgres.database()
    db = tracking_database(url)
    try:
        _looks_up_as_peewee(db)
    finally:
        db.close()
        postgres.drop(url)
