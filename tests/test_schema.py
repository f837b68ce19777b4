"""runtime.schema: the tables follow the models, at start-up and by `migrate`, on SQLite
and PostgreSQL (plain Peewee models on a database of their own, changed between steps
as an app's source is changed between restarts)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import peewee
import pytest

from runtime.db import tracking_database
from runtime.schema import SchemaMismatch, check_schema, migrate_models
from tests.databases import both_databases

pytestmark = both_databases


@pytest.fixture
def db(database_settings: dict[str, str]) -> Iterator[peewee.DatabaseProxy]:
    proxy = peewee.DatabaseProxy()
    real = tracking_database(database_settings.get("url") or database_settings["path"])
    proxy.initialize(real)
    yield proxy
    real.close()


def poll_model(db: peewee.DatabaseProxy, **fields: Any) -> type[peewee.Model]:
    """The `polls` table's model as this step of the test writes it."""

    class Meta:
        database = db
        table_name = "polls"

    attrs = {"title": peewee.CharField(index=True), "Meta": Meta, "__module__": __name__}
    return type("Poll", (peewee.Model,), {**attrs, **fields})


def columns(db: peewee.DatabaseProxy) -> dict[str, tuple[str, bool]]:
    return {c.name: (c.data_type.lower(), c.null) for c in db.get_columns("polls")}


def indexes(db: peewee.DatabaseProxy) -> dict[str, bool]:
    return {i.name: i.unique for i in db.get_indexes("polls") if i.name != "polls_pkey"}


def run(models: list[type[peewee.Model]], **options: bool) -> tuple[int, list[str]]:
    said: list[str] = []
    status = migrate_models(models, say=said.append, warn=said.append, **options)
    return status, said


def test_a_column_with_a_default_is_added_at_start_up(db: peewee.DatabaseProxy) -> None:
    check_schema([poll_model(db)])
    poll_model(db).create(title="before")
    Poll = poll_model(db, color=peewee.CharField(default="red"))
    check_schema([Poll])
    assert [(p.title, p.color) for p in Poll.select()] == [("before", "red")]
    Poll.create(title="after", color="blue")
    assert Poll.select().count() == 2
    assert run([Poll]) == (0, ["the database matches the models"])


def test_what_start_up_does_not_make_it_refuses_to_start_and_changes_nothing(
    db: peewee.DatabaseProxy,
) -> None:
    check_schema([poll_model(db)])
    poll_model(db).create(title="a")
    Poll = poll_model(
        db, color=peewee.CharField(default="red"), votes=peewee.IntegerField()
    )  # votes: NOT NULL, no default
    with pytest.raises(SchemaMismatch) as refused:
        check_schema([Poll])
    assert refused.value.lines("python -m runtime migrate --app polls") == [
        'Poll.votes: column "votes" is NOT NULL without a default and the table "polls" '
        "exists: give it a default or null=True, or run: python -m runtime migrate --app polls"
    ]
    assert "color" not in columns(db)  # all or nothing: not even the harmless one


def test_auto_migrate_false_refuses_any_difference(db: peewee.DatabaseProxy) -> None:
    check_schema([poll_model(db)])
    with pytest.raises(SchemaMismatch) as refused:
        check_schema([poll_model(db, color=peewee.CharField(null=True))], auto_migrate=False)
    assert str(refused.value) == (
        'Poll.color: column "color" is missing from table "polls" '
        "(database.auto_migrate is false): run: python -m runtime migrate"
    )


def test_dry_run_prints_the_sql_and_changes_nothing_then_migrate_applies(
    db: peewee.DatabaseProxy,
) -> None:
    check_schema([poll_model(db)])
    poll_model(db).create(title="a")
    before = columns(db)
    Poll = poll_model(db, votes=peewee.IntegerField())
    status, said = run([Poll], dry_run=True)
    assert status == 0
    assert said[0] == '-- Poll.votes: add column "votes"'
    assert 'ALTER TABLE "polls" ADD COLUMN "votes" INTEGER;' in said
    assert said[-1] == "-- dry run: nothing was changed"
    assert columns(db) == before
    assert run([Poll]) == (0, ['Poll.votes: added column "votes" (rows that were there: 0)'])
    assert columns(db)["votes"][1] is False  # NOT NULL
    assert [p.votes for p in Poll.select()] == [0]


def test_destructive_changes_wait_for_the_flag(db: peewee.DatabaseProxy) -> None:
    Old = poll_model(db, votes=peewee.CharField(), note=peewee.TextField())
    check_schema([Old])
    Old.create(title="a", votes="12", note="x")
    Old.create(title="b", votes="7", note="y")
    Poll = poll_model(db, votes=peewee.IntegerField())  # note dropped, votes retyped
    with pytest.raises(SchemaMismatch) as refused:
        check_schema([Poll])  # note is NOT NULL without a default: inserts would fail
    assert [line.split(":")[0] for line in refused.value.lines()] == ["Poll.note", "Poll.votes"]
    assert all("run: python -m runtime migrate --destructive" in x for x in refused.value.lines())
    status, said = run([Poll])
    assert status == 1
    assert said == [
        'Poll.note: drop column "note": skipped (destructive; pass --destructive)',
        'Poll.votes: retype column "votes" from text to integer: skipped (destructive; '
        "pass --destructive)",
    ]
    assert run([Poll], destructive=True) == (
        0,
        [
            'Poll.note: dropped column "note"',
            'Poll.votes: retyped column "votes" from text to integer',
        ],
    )
    assert set(columns(db)) == {"id", "title", "votes"}
    assert sorted((p.title, p.votes) for p in Poll.select()) == [("a", 12), ("b", 7)]
    assert indexes(db) == {"poll_title": False}  # the rebuilt table kept its index
    check_schema([Poll])  # starts


def test_a_unique_index_that_rows_violate_is_refused(db: peewee.DatabaseProxy) -> None:
    Old = poll_model(db)
    check_schema([Old])
    for title in ("same", "same", "other"):
        Old.create(title=title)
    Poll = poll_model(db, title=peewee.CharField(unique=True))
    with pytest.raises(SchemaMismatch) as refused:
        check_schema([Poll])
    (line,) = refused.value.lines()
    assert line.startswith(
        "Poll.title: cannot make index \"poll_title\" unique: rows share title='same' (2 rows)"
    ), line
    status, said = run([Poll], destructive=True)
    assert status == 1 and said == [f"Poll.title: refused: {line.split(': ', 1)[1]}"]
    assert indexes(db) == {"poll_title": False}
    Old.delete().where(Old.title == "same").execute()
    assert run([Poll], destructive=True) == (
        0,
        ['Poll.title: made index "poll_title" a unique index'],
    )
    assert indexes(db) == {"poll_title": True}


def test_a_column_left_behind_is_a_warning_if_inserts_still_work(
    db: peewee.DatabaseProxy, caplog: pytest.LogCaptureFixture
) -> None:
    check_schema([poll_model(db, note=peewee.TextField(null=True))])
    Poll = poll_model(db)
    check_schema([Poll])
    Poll.create(title="works")
    assert 'Poll.note: column "note" of table "polls" is no longer in the model' in caplog.text


def test_a_failing_migration_leaves_the_database_as_it_was(db: peewee.DatabaseProxy) -> None:
    check_schema([poll_model(db, note=peewee.TextField(null=True))])
    poll_model(db, note=peewee.TextField(null=True)).create(title="a", note=None)
    before, index_before = columns(db), indexes(db)
    # A new column, then NOT NULL on a column that holds a NULL: the second fails.
    Poll = poll_model(db, note=peewee.TextField(), color=peewee.CharField(default="red"))
    status, said = run([Poll], destructive=True)
    assert status == 1
    (line,) = said
    assert line.startswith('error: Poll.note: make column "note" NOT NULL failed: '), line
    assert line.endswith("; the database was left as it was")
    assert columns(db) == before and indexes(db) == index_before


def test_a_new_unique_index_that_rows_violate_is_refused(db: peewee.DatabaseProxy) -> None:
    Old = poll_model(db, note=peewee.CharField(null=True))
    check_schema([Old])
    for note in ("x", "x", None, None):  # NULLs never clash
        Old.create(title="t", note=note)
    Poll = poll_model(db, note=peewee.CharField(null=True, unique=True))
    with pytest.raises(SchemaMismatch) as refused:
        check_schema([Poll])
    assert refused.value.lines() == [
        'Poll.note: cannot add the unique index "poll_note" on polls(note): rows share '
        "note='x' (2 rows): make those rows differ, or drop unique=True"
    ]
    Old.update(note="y").where(Old.id == 1).execute()
    check_schema([Poll])
    assert indexes(db) == {"poll_title": False, "poll_note": True}


def test_tables_peewee_made_for_every_field_type_match_their_models(
    db: peewee.DatabaseProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """A restart changes nothing: no field type, index or constraint of a table that
    Peewee made for its model reads back as a difference (one would refuse to start
    an app that did not change)."""
    from runtime.json_field import JSONField

    class Meta:
        database = db
        table_name = "kinds"
        indexes = ((("small", "big"), True), (("when", "day"), False))
        constraints = [peewee.Check("small >= 0", name="small_not_negative")]

    class Owner(peewee.Model):
        name = peewee.CharField(unique=True)

        class Meta:
            database = db
            table_name = "owners"

    fields: dict[str, Any] = {
        "char": peewee.CharField(max_length=40),
        "fixed": peewee.FixedCharField(max_length=3, null=True),
        "text": peewee.TextField(default=""),
        "small": peewee.SmallIntegerField(default=0),
        "number": peewee.IntegerField(null=True, constraints=[peewee.Check("number < 100")]),
        "big": peewee.BigIntegerField(default=0),
        "real": peewee.FloatField(null=True),
        "double": peewee.DoubleField(null=True),
        "money": peewee.DecimalField(max_digits=12, decimal_places=2, null=True),
        "flag": peewee.BooleanField(default=False),
        "when": peewee.DateTimeField(null=True),
        "day": peewee.DateField(null=True),
        "hour": peewee.TimeField(null=True),
        "stamp": peewee.TimestampField(null=True),
        "uuid": peewee.UUIDField(null=True, unique=True),
        "blob": peewee.BlobField(null=True),
        "address": peewee.IPField(null=True),
        "data": JSONField(default=dict),
        "owner": peewee.ForeignKeyField(Owner, null=True, on_delete="CASCADE"),
        "Meta": Meta,
        "__module__": __name__,
    }
    Kinds = type("Kinds", (peewee.Model,), fields)
    db.create_tables([Owner, Kinds])
    with caplog.at_level("INFO", logger="runtime"):
        check_schema([Owner, Kinds])
        check_schema([Owner, Kinds])
    assert [r.getMessage() for r in caplog.records] == []  # nothing made, nothing warned
    assert run([Owner, Kinds]) == (0, ["the database matches the models"])
