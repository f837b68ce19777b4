"""BaseModel: collections, rules, hidden fields, and changes announced only on commit."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest
from quart import Quart

from runtime import BaseModel, registry
from runtime.base_model import collection, collections
from runtime.db import (
    DatabaseUnavailable,
    RecordChange,
    database,
    on_commit,
    tracking_database,
)
from runtime.users import User
from tests.databases import both_databases


class Article(BaseModel):
    title = peewee.CharField()
    secret = peewee.CharField(default="s3cret")
    writer = peewee.ForeignKeyField(User, null=True)

    read_rule = "public"
    write_rule = "owner"
    owner_field = "writer"
    hidden = ("secret",)

    class Meta:
        table_name = "test_articles"


class Tagged(BaseModel):
    slug = peewee.CharField(primary_key=True)
    label = peewee.CharField(default="")

    @staticmethod
    def _even(user: User, record: Tagged) -> bool:
        return len(record.slug) % 2 == 0

    read_rule = _even

    class Meta:
        table_name = "test_tagged"


@pytest.fixture
def changes(app: Quart) -> Iterator[list[RecordChange]]:
    seen: list[RecordChange] = []

    def receiver(batch: list[RecordChange]) -> None:
        seen.extend(batch)

    on_commit.connect(receiver)
    yield seen
    on_commit.disconnect(receiver)


def summary(changes: list[RecordChange]) -> list[tuple[str, str, str]]:
    return [(c.model.collection_name(), c.action, c.data.get("title", "")) for c in changes]


def test_subclasses_are_collections_named_by_table() -> None:
    assert collection("test_articles") is Article
    assert collections()["users"] is User
    assert "basemodel" not in collections()


def test_invalid_declarations_are_refused() -> None:
    with pytest.raises(TypeError, match="read_rule"):

        class BadRule(BaseModel):
            read_rule = "everyone"

    with pytest.raises(TypeError, match="owner_field"):

        class NoOwner(BaseModel):
            read_rule = "owner"

    with pytest.raises(TypeError, match="hidden"):

        class BadHidden(BaseModel):
            hidden = ("nope",)


def test_a_second_collection_with_the_same_name_is_refused() -> None:
    """A model of your own never loses silently to another with its table name."""
    with pytest.raises(TypeError) as refused:

        class Impostor(BaseModel):
            title = peewee.CharField()

            class Meta:
                table_name = "test_articles"

    message = str(refused.value)
    assert "'test_articles'" in message
    assert "tests.test_base_model.Article" in message and ".Impostor" in message
    assert collection("test_articles") is Article


def test_the_same_class_defined_again_replaces_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reloading a module (a development server's reloader does) defines its classes again."""
    (tmp_path / "reloaded_collection.py").write_text(
        "import peewee\n"
        "from runtime import BaseModel\n\n"
        "class Reloaded(BaseModel):\n"
        "    title = peewee.CharField()\n\n"
        "    class Meta:\n"
        "        table_name = 'test_reloaded'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("reloaded_collection")
    first = module.Reloaded
    importlib.reload(module)
    assert module.Reloaded is not first
    assert collection("test_reloaded") is module.Reloaded


def test_write_rule_is_a_shorthand_for_the_actions_not_given() -> None:
    def editors(user: User, record: BaseModel) -> bool:
        return True

    class Shorthand(BaseModel):
        writer = peewee.ForeignKeyField(User, null=True)
        write_rule = "owner"
        delete_rule = "admin"
        owner_field = "writer"

        class Meta:
            table_name = "test_shorthand"

    class Child(Shorthand):
        update_rule = editors  # a plain function stays a rule, not a method

        class Meta:
            table_name = "test_shorthand_child"

    class PerAction(BaseModel):
        create_rule = "authenticated"

        class Meta:
            table_name = "test_per_action"

    assert (Shorthand.create_rule, Shorthand.update_rule, Shorthand.delete_rule) == (
        "owner",
        "owner",
        "admin",
    )
    assert (Child.create_rule, Child.update_rule, Child.delete_rule) == ("owner", editors, "admin")
    assert (PerAction.read_rule, PerAction.update_rule, PerAction.delete_rule) == ("admin",) * 3


def test_invalid_action_rules_name_the_class_and_attribute() -> None:
    with pytest.raises(TypeError, match=r"BadCreate\.create_rule: 'everyone'"):

        class BadCreate(BaseModel):
            create_rule = "everyone"

    with pytest.raises(TypeError, match=r"BadDelete\.delete_rule is 'owner'"):

        class BadDelete(BaseModel):
            delete_rule = "owner"

    with pytest.raises(TypeError, match=r"BadWrite\.write_rule is 'owner'"):

        class BadWrite(BaseModel):
            write_rule = "owner"  # needs an owner_field, as the rules it sets do


@both_databases
def test_rules_and_visibility(users: dict[str, User]) -> None:
    alice, bob, root = users["alice"], users["bob"], users["root"]
    article = Article.create(title="t", writer=alice)
    visible = article.visible_to(None)
    assert visible == {"id": article.id, "title": "t", "writer": alice.id}
    assert article.writable_by(alice) and not article.writable_by(bob)
    assert not article.writable_by(None) and not article.writable_by(root)
    for check in (article.creatable_by, article.updatable_by, article.deletable_by):
        assert check(alice) and not check(bob) and not check(None)
    assert Article.collection_creatable_by(bob) and not Article.collection_creatable_by(None)
    assert Article.collection_writable_by(bob)  # the older name: may create
    assert Article.collection_readable_by(None)
    assert not Tagged.collection_readable_by(None) and Tagged.collection_readable_by(bob)
    assert Tagged(slug="ab").readable_by(bob) and not Tagged(slug="abc").readable_by(bob)
    assert not Tagged(slug="ab").readable_by(None)
    assert User.collection_readable_by(bob)
    assert alice.visible_to(alice) is not None and alice.visible_to(bob) is None
    assert "password_hash" not in (alice.visible_to(root) or {})


@both_databases
def test_create_update_delete_are_announced(users: dict[str, User], changes: list) -> None:
    article = Article.create(title="one", writer=users["alice"])
    article.title = "two"
    article.save()
    article.delete_instance()
    assert [(c.action, c.changed) for c in changes] == [
        ("create", ()),
        ("update", ("title",)),
        ("delete", ()),
    ]
    assert changes[0].record_id == str(article.id)
    assert changes[2].data["title"] == "two"  # a delete carries the last state


@both_databases
def test_nothing_for_a_save_that_changes_nothing(app: Quart, changes: list) -> None:
    article = Article.create(title="one")
    changes.clear()
    Article.get_by_id(article.id).save()  # nothing dirty
    assert Article(id=999, title="ghost").save() == 0  # no such row: no update happened
    assert changes == []


@both_databases
def test_a_preset_primary_key_is_still_a_create(app: Quart, changes: list) -> None:
    Tagged.create(slug="preset")
    Tagged(slug="other").save(force_insert=True)
    assert [(c.action, c.record_id) for c in changes] == [
        ("create", "preset"),
        ("create", "other"),
    ]


@both_databases
def test_only_after_commit_and_in_commit_order(app: Quart, changes: list) -> None:
    with database.atomic():
        Article.create(title="a")
        Article.create(title="b")
        assert changes == []
    assert summary(changes) == [("test_articles", "create", "a"), ("test_articles", "create", "b")]


@both_databases
def test_rolled_back_transaction_emits_nothing(app: Quart, changes: list) -> None:
    with pytest.raises(RuntimeError), database.atomic():
        Article.create(title="lost")
        raise RuntimeError
    with database.atomic() as txn:
        Article.create(title="also lost")
        txn.rollback()
        Article.create(title="kept")
    assert summary(changes) == [("test_articles", "create", "kept")]
    assert [a.title for a in Article.select()] == ["kept"]


@both_databases
def test_savepoints(app: Quart, changes: list) -> None:
    with database.atomic():
        Article.create(title="outer")
        with pytest.raises(RuntimeError), database.atomic():
            Article.create(title="inner lost")
            raise RuntimeError
        with database.atomic():
            Article.create(title="inner kept")
            with database.atomic() as sp:
                Article.create(title="deep lost")
                sp.rollback()
        assert changes == []
    assert summary(changes) == [
        ("test_articles", "create", "outer"),
        ("test_articles", "create", "inner kept"),
    ]
    changes.clear()
    with pytest.raises(RuntimeError), database.atomic():
        with database.atomic():
            Article.create(title="released but rolled back with the outer")
        raise RuntimeError
    assert changes == []


@both_databases
def test_manual_commit_mid_transaction(app: Quart, changes: list) -> None:
    with database.atomic() as txn:
        Article.create(title="first")
        txn.commit()
        assert summary(changes) == [("test_articles", "create", "first")]
        Article.create(title="second")
    assert len(changes) == 2


@both_databases
def test_a_failing_receiver_does_not_undo_the_save(app: Quart, changes: list) -> None:
    def broken(batch: list[RecordChange]) -> None:
        raise RuntimeError("receiver bug")

    on_commit.connect(broken)
    try:
        Article.create(title="saved anyway")
    finally:
        on_commit.disconnect(broken)
    assert Article.select().count() == 1 and len(changes) == 1


@both_databases
def test_bulk_queries_announce_each_row(users: dict[str, User], changes: list) -> None:
    alice = users["alice"]
    Article.insert_many([{"title": "a"}, {"title": "b"}]).execute()
    last = Article.insert(title="c", writer=alice).execute()
    assert last == Article.get(Article.title == "c").id
    assert [(c.action, c.data["title"]) for c in changes] == [
        ("create", "a"),
        ("create", "b"),
        ("create", "c"),
    ]
    changes.clear()
    assert Article.update(title="z").where(Article.title != "c").execute() == 2
    assert [(c.action, c.data["title"], c.changed) for c in changes] == [
        ("update", "z", ("title",)),
        ("update", "z", ("title",)),
    ]
    assert all(c.data["secret"] == "s3cret" for c in changes)  # whole rows
    changes.clear()
    assert Article.delete().where(Article.title == "z").execute() == 2
    assert [(c.action, c.data["title"]) for c in changes] == [("delete", "z"), ("delete", "z")]
    changes.clear()
    Article.bulk_create([Article(title="x"), Article(title="y")])
    assert [c.data["title"] for c in changes] == ["x", "y"]


@both_databases
def test_bulk_queries_in_a_rolled_back_transaction(app: Quart, changes: list) -> None:
    with database.atomic() as txn:
        Article.insert_many([{"title": "a"}, {"title": "b"}]).execute()
        Article.update(title="c").execute()
        txn.rollback()
    assert changes == []


@both_databases
def test_save_and_delete_are_announced_once(users: dict[str, User], changes: list) -> None:
    article = Article.create(title="once")
    article.title = "twice?"
    article.save()
    article.delete_instance()
    assert [c.action for c in changes] == ["create", "update", "delete"]


@both_databases
def test_recursive_delete_announces_the_dependants(users: dict[str, User], changes: list) -> None:
    alice = users["alice"]
    Article.create(title="mine", writer=alice)
    changes.clear()
    alice.delete_instance(recursive=True, delete_nullable=False)
    assert [(c.model.collection_name(), c.action) for c in changes] == [
        ("test_articles", "update"),
        ("users", "delete"),
    ]
    assert changes[0].changed == ("writer",) and changes[0].data["writer"] is None


@both_databases
def test_what_is_announced_is_what_an_aborted_transaction_kept(app: Quart, changes: list) -> None:
    """After an error, SQLite keeps the transaction's other statements, while
    PostgreSQL aborts the transaction and answers COMMIT by rolling it all back: either
    way the events are exactly the rows that are there afterwards."""
    Tagged.create(slug="taken")
    changes.clear()
    with database.atomic():
        Article.create(title="before the error")
        with pytest.raises(peewee.IntegrityError):
            Tagged.create(slug="taken")
    assert [c.data["title"] for c in changes] == [a.title for a in Article.select()]


@both_databases
def test_savepoints_however_they_are_opened(app: Quart, changes: list) -> None:
    """Through a DatabaseProxy (whose savepoints are Peewee's own), and in raw SQL."""
    proxy = peewee.DatabaseProxy()
    proxy.initialize(database.obj)
    with proxy.atomic():
        Article.create(title="outer")
        with proxy.atomic() as savepoint:
            Article.create(title="rolled back")
            savepoint.rollback()
            Article.create(title="after the rollback")
        database.execute_sql('SAVEPOINT "raw"')
        Article.create(title="raw, rolled back")
        database.execute_sql("rollback to savepoint raw")  # unquoted names fold
        Article.create(title="raw, kept")
        database.execute_sql('RELEASE SAVEPOINT "raw"')
    kept = ["outer", "after the rollback", "raw, kept"]
    assert [c.data["title"] for c in changes] == kept
    assert sorted(a.title for a in Article.select()) == sorted(kept)


@both_databases
def test_bulk_create_gets_its_keys_back_where_the_database_returns_them(
    app: Quart, changes: list
) -> None:
    articles = [Article(title="x"), Article(title="y")]
    Article.bulk_create(articles)
    ids = [c.data["id"] for c in changes]
    assert ids == [a.id for a in Article.select().order_by(Article.id)]
    if database.returning_clause:  # PostgreSQL: Peewee sets them, as without capture
        assert [a.id for a in articles] == ids


@both_databases
@pytest.mark.parametrize("many", [False, True], ids=["insert", "insert_many"])
def test_an_insert_returns_what_peewees_own_returns(app: Quart, changes: list, many: bool) -> None:
    row = {"id": 7, "title": "z"}  # its key given: every insert below is of the same row
    peewees_own = super(BaseModel, Article)  # Peewee's insert methods, on the same table

    def insert(model: Any) -> Any:
        query = model.insert_many([row]) if many else model.insert(**row)
        result = query.on_conflict_ignore().execute()
        # PostgreSQL: Peewee's insert_many returns a cursor over the keys
        return list(result) if isinstance(result, peewee.CursorWrapper) else result

    with database.atomic() as transaction:
        inserted = insert(peewees_own)
        transaction.rollback()
    assert insert(Article) == inserted
    assert inserted == ([(7,)] if many and database.returning_clause else 7)
    ignored = insert(peewees_own)  # the row is there: a conflict, ignored
    if database.returning_clause:  # PostgreSQL: no key, as no row
        assert insert(Article) == ignored == ([] if many else None)
    else:  # SQLite: Peewee's is the cursor's last row id, left by an earlier insert
        assert insert(Article) is None
    assert [(c.action, c.record_id) for c in changes] == [("create", "7")]


@both_databases
def test_a_model_on_a_database_of_its_own(
    app: Quart,
    changes: list,
    database_settings: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "_registry", collections())  # the next apps serve it not
    own = peewee.DatabaseProxy()

    class OwnThing(BaseModel):
        name = peewee.CharField()

        class Meta:
            database = own
            table_name = "test_own_things"

    with pytest.raises(DatabaseUnavailable, match=r"OwnThing: its DatabaseProxy was never"):
        OwnThing.create(name="too early")
    tracked = tracking_database(database_settings.get("url") or database_settings["path"])
    own.initialize(tracked)
    try:
        own.create_tables([OwnThing])
        with own.atomic():
            thing = OwnThing.create(name="a")
            thing.name = "b"
            thing.save()
        assert [(c.model, c.action, c.data["name"]) for c in changes] == [
            (OwnThing, "create", "a"),
            (OwnThing, "update", "b"),
        ]
        own.initialize(peewee.SqliteDatabase(":memory:"))
        with pytest.raises(DatabaseUnavailable, match=r"a SqliteDatabase announces no changes"):
            OwnThing.create(name="not tracked")
    finally:
        tracked.close()
        own.initialize(None)


def test_the_default_database_says_how_to_open_it() -> None:
    previous = database.obj
    database.initialize(None)
    try:
        with pytest.raises(DatabaseUnavailable, match=r"call runtime.db.open_database"):
            Article.create(title="nowhere")
        with pytest.raises(AttributeError, match=r"no database is open"):
            database.atomic().__enter__()
    finally:
        database.initialize(previous)
