"""The event codec on what databases give: a record of every Peewee field type, written
through the real capture path on SQLite and on PostgreSQL, comes back from the codec
with every value equal and of the same type, and read rules and filters answer the same
on the decoded event as on the captured one."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import peewee
import pytest
from playhouse import postgres_ext, sqlite_ext

from runtime import BaseModel, registry
from runtime.base_model import collections
from runtime.db import on_commit, tracking_database
from runtime.json_values import json_value
from runtime.realtime.capture import ChangeCapture
from runtime.realtime.events import Event
from runtime.realtime.fanout.access import EventAccess
from runtime.realtime.fanout.registry import filter_matches
from runtime.realtime.publishing.codec import EventCodec
from runtime.realtime.stats import Faults
from tests.databases import both_databases
from tests.realtime.typed import same, same_event

CODEC = EventCodec(Event)

# Every field type Peewee has, and the type of the value each gives back (on both).
PEEWEE_FIELDS: dict[type[peewee.Field], type] = {
    peewee.AutoField: int,
    peewee.BigAutoField: int,
    peewee.IntegerField: int,
    peewee.BigIntegerField: int,
    peewee.SmallIntegerField: int,
    peewee.FloatField: float,
    peewee.DoubleField: float,
    peewee.DecimalField: decimal.Decimal,
    peewee.CharField: str,
    peewee.FixedCharField: str,
    peewee.TextField: str,
    peewee.BlobField: bytes,  # SQLite's bytes; psycopg 3's bytes too (psycopg2's: memoryview)
    peewee.BitField: int,
    peewee.UUIDField: uuid.UUID,
    peewee.BinaryUUIDField: uuid.UUID,
    peewee.DateTimeField: dt.datetime,
    peewee.DateField: dt.date,
    peewee.TimeField: dt.time,
    peewee.TimestampField: dt.datetime,
    peewee.IPField: str,
    peewee.BooleanField: bool,
    peewee.ForeignKeyField: int,
}


class Inet(peewee.Field):
    """PostgreSQL's inet: psycopg gives an ipaddress address or interface."""

    field_type = "inet"


class Cidr(peewee.Field):
    """PostgreSQL's cidr: psycopg gives an ipaddress network."""

    field_type = "cidr"


class Numeric(peewee.DecimalField):
    """PostgreSQL's numeric without precision: it holds NaN and infinities too."""

    def get_modifiers(self) -> None:
        return None


def _typed_rule(user: Any, record: Any) -> bool:
    """A read rule that works with the record's typed values, as apps' rules do (and
    the "owner" rule's comparison of the foreign key with the user's id)."""
    SAW.append(dict(record.__data__))
    return bool(
        record.__data__["owner"] == user.id
        and record.price > decimal.Decimal("1")
        and record.created.year >= 2024
        and record.day < dt.date(2100, 1, 1)
        and record.blob[:1] == b"\x00"
        and record.uid.version == 4
        and record.flag is True
        and ipaddress.ip_address(record.ip).is_private
    )


SAW: list[dict[str, Any]] = []


@dataclass
class World:
    backend: str
    models: dict[str, type[BaseModel]]
    events: list[Event] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.models[name]

    @property
    def extras(self) -> str:
        """The collection of the types only this database has."""
        return "codec_sqlite_json" if self.backend == "sqlite" else "codec_postgres_types"


def _define(db: peewee.DatabaseProxy, backend: str) -> dict[str, type[BaseModel]]:
    class Owner(BaseModel):
        name = peewee.CharField()
        read_rule = "public"

        class Meta:
            database = db
            table_name = "codec_owners"

    class Every(BaseModel):  # id: AutoField
        big = peewee.BigIntegerField()
        small = peewee.SmallIntegerField()
        integer = peewee.IntegerField()
        ratio = peewee.FloatField()
        double = peewee.DoubleField()
        price = peewee.DecimalField(max_digits=30, decimal_places=10)
        exact = peewee.DecimalField(auto_round=False)
        title = peewee.CharField()
        code = peewee.FixedCharField(max_length=8)
        body = peewee.TextField()
        blob = peewee.BlobField()
        bits = peewee.BitField()
        uid = peewee.UUIDField()
        binary_uid = peewee.BinaryUUIDField()
        created = peewee.DateTimeField()
        day = peewee.DateField()
        at = peewee.TimeField()
        stamp = peewee.TimestampField()
        micro_stamp = peewee.TimestampField(resolution=10**6, utc=True)
        ip = peewee.IPField()
        flag = peewee.BooleanField()
        owner = peewee.ForeignKeyField(Owner)
        note = peewee.TextField(null=True)
        read_rule = _typed_rule

        class Meta:
            database = db
            table_name = "codec_every"

    class Big(BaseModel):
        id = peewee.BigAutoField()
        name = peewee.CharField()
        read_rule = "public"

        class Meta:
            database = db
            table_name = "codec_big"

    models: list[type[BaseModel]] = [Owner, Every, Big]
    if backend == "sqlite":

        class SqliteJson(BaseModel):
            doc = sqlite_ext.JSONField()
            read_rule = "public"

            class Meta:
                database = db
                table_name = "codec_sqlite_json"

        models.append(SqliteJson)
    else:

        class PostgresTypes(BaseModel):
            doc = postgres_ext.JSONField(null=True)
            binary_doc = postgres_ext.BinaryJSONField()
            numbers = postgres_ext.ArrayField(peewee.IntegerField)
            words = postgres_ext.ArrayField(peewee.TextField)
            interval = postgres_ext.IntervalField()
            zoned = postgres_ext.DateTimeTZField()
            host = Inet()
            network = Cidr()
            number = peewee.FloatField()
            exact = Numeric(auto_round=False)
            read_rule = "public"

            class Meta:
                database = db
                table_name = "codec_postgres_types"

        models.append(PostgresTypes)
    return {model.collection_name(): model for model in models}


@pytest.fixture
def world(
    backend: str, database_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """Models of every field type on a database of their own, their committed changes
    captured as events (the capture stage, as the realtime extension runs it)."""
    monkeypatch.setattr(registry, "_registry", collections())  # no other app serves them
    proxy = peewee.DatabaseProxy()
    models = _define(proxy, backend)
    db = tracking_database(database_settings.get("url") or database_settings["path"])
    proxy.initialize(db)
    world = World(backend, models)
    capture = ChangeCapture(lambda: models, world.events.extend)
    on_commit.connect(capture)
    try:
        db.connect()
        if backend == "postgresql":
            # timestamptz comes back in the session's zone: make it one with summer time
            db.execute_sql("SET TIME ZONE 'Europe/Paris'")
        db.create_tables(list(models.values()))
        yield world
    finally:
        on_commit.disconnect(capture)
        db.close()
        proxy.initialize(None)


def _every(owner: Any, **changes: Any) -> dict[str, Any]:
    values = {
        "big": 2**63 - 1,
        "small": -(2**15),
        "integer": -(2**31),
        "ratio": -0.0,
        "double": 1e308,
        "price": decimal.Decimal("12345678901234567890.0123456789"),
        "exact": decimal.Decimal("1.50"),
        "title": "héllo ✓ 𝄞",
        "code": "ab",
        "body": "line one\nline two",
        "blob": b"\x00\xff\x00",
        "bits": 0b1011,
        "uid": uuid.uuid4(),
        "binary_uid": uuid.uuid4(),
        "created": dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
        "day": dt.date(2024, 2, 29),
        "at": dt.time(23, 59, 59, 999999),
        "stamp": dt.datetime(2024, 1, 2, 3, 4, 5),
        "micro_stamp": dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        "ip": "10.1.2.3",
        "flag": True,
        "owner": owner,
    }
    return {**values, **changes}


def _write(world: World) -> None:
    """Creates, updates (one, and in bulk) and deletes of every model, committed."""
    Owner, Every, Big = world["codec_owners"], world["codec_every"], world["codec_big"]
    owner = Owner.create(name="ann")
    every = Every.create(**_every(owner))
    every.price = decimal.Decimal("2.5")
    every.created = dt.datetime(2025, 1, 1)
    every.save()
    extremes = _every(
        owner,
        big=-(2**63),
        small=2**15 - 1,
        ratio=math.inf,
        double=-math.inf,
        price=decimal.Decimal("-0.0000000001"),
        exact=decimal.Decimal("1E+2"),
        title="",
        body="",
        blob=b"",
        created=dt.datetime(1, 1, 1),
        day=dt.date(9999, 12, 31),
        at=dt.time(0, 0),
        ip="255.255.255.255",
        flag=False,
    )
    Every.insert_many([extremes]).execute()
    Every.update(note="bulk", flag=True).where(Every.id > 0).execute()
    every.delete_instance()
    Big.create(name="big")
    if world.backend == "sqlite":
        Json = world["codec_sqlite_json"]
        Json.create(doc={"a": [1, 2.5, None, True, {"b": "c"}], "~d": {"~d": "x"}, "~": 1})
        Json.create(doc=[{"~tu": [1]}, "x", -0.0])
        Json.create(doc="just text")
    else:
        Types = world["codec_postgres_types"]
        Types.create(
            doc={"a": [1, 2.5, None, True], "~d": {"~d": "x"}},
            binary_doc={"~tu": ["not", "a", "tuple"]},
            numbers=[1, -(2**31), 2**31 - 1],
            words=["a", "", "ü"],
            interval=dt.timedelta(days=-1, seconds=3, microseconds=5),
            zoned=dt.datetime(2024, 10, 27, 1, 30, tzinfo=dt.UTC),  # 2:30 in Paris, twice
            host="10.1.2.3/24",
            network="2001:db8::/32",
            number=math.nan,
            exact=decimal.Decimal("NaN"),
        )
        Types.create(
            doc=None,
            binary_doc=[],
            numbers=[],
            words=[],
            interval=dt.timedelta(0),
            zoned=dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.UTC),  # the first 2:30
            host="::1",
            network="10.0.0.0/8",
            number=-0.0,
            exact=decimal.Decimal("-Infinity"),
        )


@both_databases
def test_every_field_type_comes_back_equal_and_of_its_type(world: World) -> None:
    _write(world)
    every_fields = {type(f) for m in world.models.values() for f in m._meta.fields.values()}
    assert set(PEEWEE_FIELDS) <= every_fields
    assert [(e.collection, e.action) for e in world.events] == [
        ("codec_owners", "create"),
        ("codec_every", "create"),
        ("codec_every", "update"),
        ("codec_every", "create"),
        ("codec_every", "update"),
        ("codec_every", "update"),
        ("codec_every", "delete"),
        ("codec_big", "create"),
        *[(world.extras, "create")] * (3 if world.backend == "sqlite" else 2),
    ]
    for event in world.events:
        model = world.models[event.collection or ""]
        assert event.values is not None
        for name, value in event.values.items():
            expected = PEEWEE_FIELDS.get(type(model._meta.fields[name]))
            if expected is not None and value is not None:
                assert type(value) is expected, (model.__name__, name, value)
        decoded = CODEC.decode(CODEC.encode(event))
        assert same_event(event, decoded), (event, decoded)


@both_databases
def test_what_postgresql_and_sqlite_give_beyond_the_core_types(world: World) -> None:
    _write(world)
    extras = [e.values or {} for e in world.events if e.collection == world.extras]
    first, last = extras[0], extras[-1]
    if world.backend == "sqlite":
        assert same(first["doc"]["~d"], {"~d": "x"})
        assert same(last["doc"], "just text")
        return
    paris = first["zoned"].tzinfo
    assert (type(paris).__name__, getattr(paris, "key", None)) == ("ZoneInfo", "Europe/Paris")
    assert (first["zoned"].hour, first["zoned"].fold, last["zoned"].fold) == (2, 1, 0)
    assert [type(first[n]) for n in ("host", "network", "interval", "numbers")] == [
        ipaddress.IPv4Interface,
        ipaddress.IPv6Network,
        dt.timedelta,
        list,
    ]
    assert (type(last["host"]), math.isnan(first["number"])) == (ipaddress.IPv6Address, True)
    for event in world.events:
        assert same_event(event, CODEC.decode(CODEC.encode(event)))


@both_databases
def test_rules_and_filters_answer_the_same_on_the_decoded_event(world: World) -> None:
    _write(world)
    owner_id = world["codec_owners"].get().id
    readers = [
        None,
        SimpleNamespace(id=owner_id, is_admin=False),
        SimpleNamespace(id=owner_id + 1, is_admin=False),
    ]
    faults = Faults()
    for event in world.events:
        model = world.models[event.collection or ""]
        decoded = CODEC.decode(CODEC.encode(event))
        for reader in readers:
            SAW.clear()
            frame, visible = EventAccess(event, model, faults).for_user(reader)
            saw_here = list(SAW)
            SAW.clear()
            frame_there, visible_there = EventAccess(decoded, model, faults).for_user(reader)
            assert frame == frame_there
            assert same(visible, visible_there)
            assert same(saw_here, SAW)  # the rule was given the same typed values
        for name, value in (event.values or {}).items():
            as_sent = json_value(value)
            for wanted in (as_sent, "something else", None):
                if isinstance(wanted, dict | list):
                    continue  # filters hold scalars only
                here = filter_matches({name: wanted}, event.values or {})
                assert here == filter_matches({name: wanted}, decoded.values or {})
                if wanted is as_sent:
                    assert here, (name, value)
    assert faults.counts == {}
    # the typed rule let the owner read the records it could judge, and no one else
    every = [e for e in world.events if e.collection == "codec_every"]
    owner = readers[1]
    assert all(EventAccess(e, world["codec_every"], faults).for_user(owner)[0] for e in every[:2])
