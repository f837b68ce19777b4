"""Peewee's private parts: every one the runtime uses, and nowhere else.

Pinned in pyproject.toml; tests/adapters/test_peewee.py checks each part used here and
fails, saying what changed, when an upgrade moves one.

- Write queries that hand over every row they wrote (`ReturningUpdate`,
  `ReturningDelete`, `ReturningInsert`) and still return what Peewee's own return.
- `write_values()`: what Peewee's own `Model.update()` and `insert()` make of their
  arguments.
- `model_from_stored()`: a model instance built from stored values, as Peewee builds one
  from a row.
- `commit_will_roll_back()`: whether PostgreSQL will answer COMMIT by rolling back.
- `index_parts()`, `create_index()`: what a model's index is (name, columns,
  uniqueness), and making one, as `Model.create_table()` makes it.
- `check_parts()`: a `peewee.Check(...)`'s name (if given) and expression.
- `sqlite_retype_column()`: playhouse.migrate's SQLite table rebuild, given the new
  column's definition (its own `alter_column_type()` writes the column's name twice).

Like the other adapters, it imports nothing of the runtime: change capture is built on
these parts (`runtime.base_model`, `runtime.db`), not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import peewee

from .peewee_statements import cached_statement

__all__ = [
    "ReturningDelete",
    "ReturningInsert",
    "ReturningUpdate",
    "ReturningWrite",
    "Rows",
    "Write",
    "check_parts",
    "commit_will_roll_back",
    "create_index",
    "index_parts",
    "model_from_stored",
    "sqlite_retype_column",
    "write_values",
]

Rows = list[dict[str, Any]]


class Write(Protocol):
    """Runs a write statement and returns its rows; given a condition (`only`), on
    those of its rows that also meet it."""

    def __call__(self, only: Any = None) -> Rows: ...


M = TypeVar("M", bound=peewee.Model)


class ReturningWrite:
    """A write query that runs with `RETURNING` every column (SQLite 3.35+, PostgreSQL)
    and hands the rows it wrote, exactly as reading them back would give them (a Decimal
    as the database kept it, a boolean as a bool), to `_written()`; its caller still gets
    what Peewee's own query returns.

    A query with a `.returning()` of its own runs as Peewee runs it, and `_written()` is
    not called: the rows it returns are not whole records.
    """

    model: Any  # Peewee's query classes set it

    def _written(self, database: Any, write: Write) -> Rows:
        """Run the statement (`write(None)`, or `write(condition)` to keep it to the rows
        that also meet `condition`) and return its rows: override to act on them."""
        return write(None)

    def _changed_fields(self) -> tuple[str, ...]:
        """The fields the statement sets, in the model's order (an update's; else none)."""
        return ()

    def _only_rows_before(self, database: Any, before: dict[Any, Any] | None) -> Any:
        """A condition for `write()` (an update's: see ReturningUpdate); None here."""
        return None

    def _execute(self, database: Any) -> Any:  # Peewee's: where every query runs
        if self._returning_set_by_caller():
            return super()._execute(database)  # type: ignore[misc]
        cached = cached_statement(self, database, self._returning_every_column)
        if cached is not None:  # a one-row write of a shape seen before: its SQL is known
            statement, params = cached

            def run(only: Any = None) -> Rows:
                assert only is None  # one row by its key (see ReturningUpdate._by_key)
                rows: Rows = statement.run(database, params)
                return rows

            return self._result(self._written(database, run), self, database)
        query = self._returning_every_column()

        def write(only: Any = None) -> Rows:
            statement = query if only is None else query.where(only)  # a copy
            return [dict(row) for row in peewee._WriteQuery._execute(statement, database)]

        return self._result(self._written(database, write), query, database)

    def _returning_every_column(self) -> Any:
        # Peewee's own returning() (not ModelInsert's, which picks model rows); it copies.
        query = peewee._WriteQuery.returning(self, *self.model._meta.sorted_fields)
        query._row_type = peewee.ROW.DICT
        return query

    def _returning_set_by_caller(self) -> bool:
        return bool(self._returning)  # type: ignore[attr-defined]

    def _result(self, rows: Rows, query: Any, database: Any) -> Any:
        return len(rows)  # what UPDATE and DELETE return: the rows affected


class ReturningUpdate(ReturningWrite, peewee.ModelUpdate):
    def _changed_fields(self) -> tuple[str, ...]:
        names = {f if isinstance(f, str) else f.name for f in self._update}
        return tuple(n for n in self.model._meta.sorted_field_names if n in names)

    def _rows_before(
        self, database: Any, fields: tuple[str, ...]
    ) -> dict[Any, dict[str, Any]] | None:
        """The values of `fields` in each row the statement's WHERE picks, by primary key,
        read as the API reads them, before the statement runs (in its transaction; locked
        FOR UPDATE where the database can). None where that cannot be said: a composite
        key, or an UPDATE … FROM whose WHERE names other tables."""
        meta = self.model._meta
        key = meta.primary_key
        if isinstance(key, peewee.CompositeKey) or self._from is not None:
            return None
        if self._by_key():  # a save(): read without building a query (the hot path)
            return _row_before(self.model, database, fields, self._where.rhs)
        select = peewee.ModelSelect(self.model, [key, *(meta.fields[name] for name in fields)])
        if self._where is not None:
            select = select.where(self._where)
        if database.for_update:
            select = select.for_update()
        return {row.pop(key.name): row for row in select.dicts().execute(database)}

    def _by_key(self) -> bool:
        """Whether the WHERE picks one row by its primary key (a save()'s)."""
        where = self._where
        return (
            isinstance(where, peewee.Expression)
            and where.lhs is self.model._meta.primary_key
            and where.op == peewee.OP.EQ
            and not isinstance(where.rhs, peewee.Node)
        )

    def _only_rows_before(self, database: Any, before: dict[Any, Any] | None) -> Any:
        """The condition that keeps the statement to the rows `_rows_before` read, or
        None. Where rows are locked rather than the whole database (PostgreSQL's READ
        COMMITTED), a row another transaction commits into the WHERE between that read
        and the write would be written too, with no values from before: a subscriber
        would never hear it leave their view. Kept to the rows read (and locked), the
        statement writes what it would have written when it read them."""
        if before is None or not database.for_update:
            return None  # SQLite: the write lock, taken at BEGIN, leaves no such moment
        if self._by_key():
            return None  # one row by its key: no other row can enter that WHERE
        key = self.model._meta.primary_key
        if before and isinstance(database, peewee.PostgresqlDatabase):
            # One array parameter however many rows (a list of them has a limit).
            return key == peewee.NodeList(
                (
                    peewee.SQL("ANY("),
                    peewee.Value(list(before), list, unpack=False),
                    peewee.SQL(")"),
                ),
                glue="",
            )
        return key.in_(list(before))


_ROW_BEFORE_SQL: dict[tuple[Any, ...], str] = {}


def _row_before(
    model: Any, database: Any, fields: tuple[str, ...], key_value: Any
) -> dict[Any, dict[str, Any]]:
    """`ReturningUpdate._rows_before` for one row picked by its primary key: the same
    statement Peewee would build, made once per model and fields, and its values
    converted as Peewee's cursor converts them (`python_value`)."""
    meta = model._meta
    key = meta.primary_key
    columns = [meta.fields[name] for name in fields]
    locks = bool(database.for_update)
    cache_key = (model, fields, database.param, locks)
    sql = _ROW_BEFORE_SQL.get(cache_key)
    if sql is None:
        opening, closing = database.quote  # Peewee's quote characters, '""' or '``'

        def quoted(name: str) -> str:
            return f"{opening}{name.replace(closing, closing * 2)}{closing}"

        table = quoted(meta.table_name)
        if meta.schema:
            table = f"{quoted(meta.schema)}.{table}"
        names = ", ".join(quoted(field.column_name) for field in columns)
        sql = f"SELECT {names} FROM {table} WHERE {quoted(key.column_name)} = "
        sql += database.param + (" FOR UPDATE" if locks else "")
        _ROW_BEFORE_SQL[cache_key] = sql
    row = database.execute_sql(sql, (key.db_value(key_value),)).fetchone()
    if row is None:
        return {}
    values = {field.name: field.python_value(raw) for field, raw in zip(columns, row, strict=True)}
    return {key.python_value(key.db_value(key_value)): values}


class ReturningDelete(ReturningWrite, peewee.ModelDelete):
    pass


class ReturningInsert(ReturningWrite, peewee.ModelInsert):
    def _returning_set_by_caller(self) -> bool:
        # ModelInsert sets a primary-key RETURNING itself on databases that have it.
        return bool(self._returning) and self._returning != self._pk_returning()

    def _result(self, rows: Rows, query: Any, database: Any) -> Any:
        # What Peewee's own insert returns (Database.last_insert_id), from the rows.
        if self._as_rowcount:
            return len(rows)
        pk = self.model._meta.primary_key.name
        if not database.returning_clause:  # SQLite: the cursor's last row id
            return rows[-1].get(pk) if rows else None
        keys = [field.name for field in self.model._meta.get_primary_keys()]
        if query._query_type == peewee.Insert.SIMPLE:  # one row: its key
            if not rows:
                return None  # nothing inserted (a conflict was ignored)
            return rows[0].get(pk) if len(keys) == 1 else tuple(rows[0].get(k) for k in keys)
        # several rows: their keys as tuples (what bulk_create reads back)
        return [tuple(row.get(k) for k in keys) for row in rows]


def write_values(model: type[peewee.Model], data: Any, values: dict[str, Any]) -> Any:
    """The field → value mapping Peewee's own `Model.update(data, **values)` and
    `insert(data, **values)` write (`data` as it is when it is not a dict)."""
    return model._normalize_data(data, values)


def model_from_stored(model: type[M], values: Mapping[str, Any]) -> M:
    """A `model` instance holding `values` as they were stored, as Peewee's cursor
    wrapper builds one from a row: no defaults applied, no field marked changed."""
    record: M = model(__no_default__=1, **values)
    record._dirty.clear()
    return record


def commit_will_roll_back(db: peewee.PostgresqlDatabase) -> bool:
    """Whether PostgreSQL will answer COMMIT on this thread's connection by rolling back
    (its transaction was aborted by an error): it does so without raising one."""
    conn = db._state.conn
    adapter = db._adapter
    return conn is not None and bool(adapter.txn_status(conn) == adapter.txn_inerror)


def sqlite_retype_column(migrator: Any, table: str, column: str, field: peewee.Field) -> None:
    """Rebuild `table` (an SQLite `SqliteMigrator`'s) with `column` defined as `field`
    is: rows are copied, indexes made again, as playhouse.migrate rebuilds a table."""
    ctx = migrator.make_context()
    definition = str(ctx.sql(field.ddl(ctx)).query()[0])
    migrator._update_column(table, column, lambda name, old: definition).run()


def index_parts(index: peewee.Index) -> tuple[str, list[Any], bool]:
    """A model's index (`Model._meta.fields_to_index()`): its name, what it indexes
    (fields, or expressions), whether it is unique."""
    return index._name, list(index._expressions), bool(index._unique)


def create_index(model: type[peewee.Model], index: peewee.Index) -> None:
    """Make `model`'s `index` (not IF NOT EXISTS: it is known to be missing)."""
    model._meta.database.execute(model._schema._create_index(index, safe=False))


def check_parts(node: Any) -> tuple[str | None, str] | None:
    """(name or None, expression) of a `peewee.Check(...)` as a field's `constraints` or
    `Meta.constraints` hold it, else None."""
    name = None
    if isinstance(node, peewee.NodeList) and len(node.nodes) == 3:
        first, entity, node = node.nodes
        if not (isinstance(first, peewee.SQL) and first.sql.upper() == "CONSTRAINT"):
            return None
        name = entity._path[-1] if isinstance(entity, peewee.Entity) else None
    if isinstance(node, peewee.SQL) and node.sql.startswith("CHECK (") and node.sql.endswith(")"):
        return name, node.sql[len("CHECK (") : -1]
    return None
