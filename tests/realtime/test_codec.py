"""The event codec: every field of an event, every value of a type it carries, back as it
was (in value and in type); anything else refused at encode; malformed bytes refused at
decode. Records written to real databases: tests/realtime/test_codec_databases.py."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import ipaddress
import json
import math
import types
import uuid
import zoneinfo
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from runtime.json_values import json_tree
from runtime.realtime.events import Event, custom_event, public_user
from runtime.realtime.publishing.codec import EventCodec
from tests.realtime.typed import same, same_event

CODEC = EventCodec(Event)


def round_trip(event: Event) -> Event:
    data = CODEC.encode(event)
    assert isinstance(data, bytes)
    decoded = CODEC.decode(data)
    assert same_event(event, decoded), (event, decoded)
    return decoded


def test_sameness_tells_apart_what_equality_does_not() -> None:
    """The checks below are only as strict as `same`."""
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    pairs = [
        (1, True),
        (1, 1.0),
        (0.0, -0.0),
        (decimal.Decimal("1.5"), decimal.Decimal("1.50")),
        (dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, fold=1)),
        (
            dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            dt.datetime(2024, 1, 1, tzinfo=paris) + dt.timedelta(hours=1),
        ),
        (dt.time(1, tzinfo=dt.timezone(dt.timedelta(0))), dt.time(1, tzinfo=dt.UTC, fold=1)),
        (b"a", memoryview(b"a")),
        ([1.0], [1]),
        ((1,), (True,)),
        (frozenset({1}), frozenset({1.0})),
        ({"a": 1}, {"a": True}),
    ]
    for a, b in pairs:
        assert a == b
        assert not same(a, b) and not same(b, a), (a, b)
    assert same(math.nan, float("nan"))
    assert same(
        {"a": [frozenset({1, "b"}), dt.time(1, tzinfo=paris)]},
        {"a": [frozenset({"b", 1}), dt.time(1, tzinfo=paris)]},
    )


# -- every field of the event ----------------------------------------------------------

# Every field of Event set to something other than its default.
EVERY_FIELD = Event(
    action="update",
    collection="posts",
    record_id="7",
    values={"id": 7, "title": "t"},
    changed=("title",),
    previous={"title": dt.datetime(2024, 1, 2, 3, 4, 5)},
    name="renamed",
    data={"k": [1, "two"]},
    user={"id": 3, "name": "ann"},
    client_ids=frozenset({"c1", "c2"}),
    user_ids=frozenset({3, "u-4"}),
    id="1-7",
    seq=7,
    key="3f2a9c-7",
)


def test_every_field_of_the_event_travels() -> None:
    """A field added to Event fails here until this test gives it a value: the codec
    reads the fields from the dataclass, and this proves each of them travels."""
    fields = dataclasses.fields(Event)
    unset = [
        f.name
        for f in fields
        if getattr(EVERY_FIELD, f.name)
        == (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
    ]
    assert unset == [], f"give these fields a value other than their default here: {unset}"
    written = json.loads(CODEC.encode(EVERY_FIELD))
    assert written[0] == 1
    assert list(written[1]) == [f.name for f in fields]
    round_trip(EVERY_FIELD)


def test_a_payload_without_a_field_that_has_a_default_gets_the_default() -> None:
    """An event written before a field (with a default) existed still decodes."""
    written = json.loads(CODEC.encode(EVERY_FIELD))
    del written[1]["seq"], written[1]["client_ids"]
    decoded = CODEC.decode(json.dumps(written).encode())
    assert (decoded.seq, decoded.client_ids) == (0, None)
    assert decoded.user_ids == EVERY_FIELD.user_ids


def test_custom_and_presence_events_round_trip() -> None:
    class Person:
        id = 42

        def public_dict(self) -> dict[str, Any]:
            return {"id": 42, "name": "Zoë", "joined": dt.date(2024, 1, 2)}

    events = [
        custom_event("ping", None),
        custom_event(
            "moved",
            {"x": 1.5, "path": [[0, 0], [1, 2]], "when": dt.datetime(2024, 1, 2), "~d": "1"},
            collection="boards",
            client_ids=["c-1", "c-2"],
            user_ids=[1, 2, "u-3"],
            user=public_user(Person()),
        ),
        custom_event("empty targets", [], client_ids=[], user_ids=[]),
        Event("join", "rooms/1", user=json_tree(public_user(Person()))),
        Event("leave", "rooms/1", user=json_tree(public_user(Person()))).published("5-1", 9),
        Event("join", "rooms/1", user=None),
    ]
    for event in events:
        decoded = round_trip(event)
        assert (decoded.is_custom, decoded.is_presence, decoded.topic) == (
            event.is_custom,
            event.is_presence,
            event.topic,
        )


# -- values JSON cannot say ------------------------------------------------------------

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
ODD_OFFSET = dt.timezone(-dt.timedelta(hours=23, minutes=59, seconds=59, microseconds=1))

VALUES = [
    "",
    "héllo ✓ 𝄞",
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**63) - 1,
    2**200,
    -(10**5000),  # past Python's 4,300-digit limit for int(str)
    True,
    False,
    None,
    0.1,
    -0.0,
    1e308,
    5e-324,
    math.inf,
    -math.inf,
    math.nan,
    decimal.Decimal("1.50"),
    decimal.Decimal("1.5"),
    decimal.Decimal("1E+2"),
    decimal.Decimal("-0"),
    decimal.Decimal("0E-7"),
    decimal.Decimal("12345678901234567890.123456789012345678901234567890"),
    decimal.Decimal("NaN"),
    decimal.Decimal("-NaN123"),
    decimal.Decimal("sNaN"),
    decimal.Decimal("-Infinity"),
    dt.datetime(2024, 1, 2, 3, 4, 5, 6),
    dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC),
    dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.datetime(1, 1, 1, tzinfo=ODD_OFFSET),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    dt.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS),  # the first 2:30 that day
    dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=PARIS),  # the second
    dt.datetime(2024, 3, 31, 2, 30, tzinfo=PARIS),  # a wall time that never was
    dt.datetime(2024, 1, 2, fold=1),
    dt.date(2024, 2, 29),
    dt.date(1, 1, 1),
    dt.time(0, 0),
    dt.time(23, 59, 59, 999999, tzinfo=ODD_OFFSET),
    dt.time(1, 2, 3, fold=1),
    dt.time(1, 2, 3, tzinfo=PARIS),
    dt.timedelta(0),
    dt.timedelta(days=-1, microseconds=1),
    dt.timedelta.max,
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    uuid.UUID("b7863ba3-1e66-4936-8454-ff55348941aa"),
    b"",
    b"\x00\xff blob",
    memoryview(b"\x00\xff view"),
    ipaddress.ip_address("10.0.0.1"),
    ipaddress.ip_address("::ffff:10.0.0.1"),
    ipaddress.ip_address("fe80::1%eth0"),
    ipaddress.ip_interface("10.1.2.3/24"),
    ipaddress.ip_interface("2001:db8::1/64"),
    ipaddress.ip_network("10.0.0.0/8"),
    ipaddress.ip_network("::/0"),
    [],
    {},
    (),
    frozenset(),
    [1, "a", None, [2.5, {"b": (3, frozenset({4}))}]],
    (1, (2, [3]), {"k": b"v"}),
    frozenset({1, "a", (2, dt.date(2024, 1, 1)), None, uuid.UUID(int=5)}),
    {"a": {"b": {"c": [dt.time(1), decimal.Decimal("2")]}}},
]


def _id(value: Any) -> str:
    if type(value) is int and value.bit_length() > 64:
        return f"int of {value.bit_length()} bits"  # repr() refuses past 4,300 digits
    if isinstance(value, memoryview):  # its repr is its address: ids must not vary
        return f"memoryview({value.tobytes()!r})"
    if isinstance(value, frozenset):  # nor with the order of hashing (pytest-xdist checks)
        return f"frozenset of {len(value)}"
    return repr(value)[:60]


@pytest.mark.parametrize("value", VALUES, ids=_id)
def test_values_keep_their_value_and_type(value: Any) -> None:
    round_trip(Event("update", "things", "1", {"v": value, "w": [value]}, ("v",), data=value))


TAG_LIKE_KEYS = ["~", "~~", "~~~", "~d", "~~d", "~tu", "~zz", "~i", "~~tu"]


@pytest.mark.parametrize("key", TAG_LIKE_KEYS)
def test_dicts_whose_keys_look_like_tags(key: str) -> None:
    for value in (
        {key: "1"},
        {key: {key: [key]}},
        {key: 1, "other": 2},
        [{key: {"~d": "x"}}],
        ({key: None},),
    ):
        round_trip(Event("custom", None, name="n", data=value, values={key: value}))


def test_the_format_is_compact_tagged_json() -> None:
    event = Event(
        "create",
        "things",
        "1",
        {"d": decimal.Decimal("1.50"), "~d": "not a tag", "b": b"\x00"},
        data={"~d": "alone"},
    )
    written = CODEC.encode(event).decode("utf-8")
    assert written == json.dumps(json.loads(written), separators=(",", ":"), ensure_ascii=False)
    assert '"values":{"d":{"~d":"1.50"},"~d":"not a tag","b":{"~b":"AA=="}}' in written
    assert '"data":{"~~d":"alone"}' in written
    assert '"changed":{"~tu":[]}' in written
    # non-ASCII text is written as UTF-8, not as \u escapes
    assert "é" in CODEC.encode(Event("custom", None, data="é")).decode("utf-8")


# -- any nested value of the types carried ---------------------------------------------

_text = st.text(st.characters(codec="utf-8"))
_fixed_zones = st.timedeltas(
    min_value=-dt.timedelta(hours=23, minutes=59), max_value=dt.timedelta(hours=23, minutes=59)
).map(dt.timezone)
_zones = st.none() | _fixed_zones | st.timezones()
_interfaces = st.builds(
    lambda address, bits: ipaddress.ip_interface(f"{address}/{bits % (address.max_prefixlen + 1)}"),
    st.ip_addresses(),
    st.integers(0, 128),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**62, max_value=2**80)
    | st.integers(min_value=-(2**80), max_value=-(2**62)),
    st.floats(),
    _text,
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["sNaN", "-NaN7", "-0E+3"]).map(decimal.Decimal),
    st.datetimes(timezones=_zones),
    st.dates(),
    st.times(timezones=_zones),
    st.timedeltas(),
    st.uuids(),
    st.binary(),
    st.binary().map(memoryview),
    st.ip_addresses(),
    _interfaces,
    _interfaces.map(lambda interface: interface.network),
)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:  # a signalling NaN Decimal
        return False
    return True


_keys = _text | st.sampled_from(TAG_LIKE_KEYS)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_keys, children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.frozensets(_scalars.filter(_hashable), max_size=4),
    ),
    max_leaves=24,
)


# Derandomized, as every property test here (the same examples on every run). Found by
# a random run, and kept: an offset with microseconds, which fromisoformat drops.
@settings(max_examples=400, deadline=None, derandomize=True)
@given(value=_values, user_ids=st.frozensets(_scalars.filter(_hashable), max_size=3))
@example(
    value=dt.datetime(2000, 1, 1, tzinfo=dt.timezone(dt.timedelta(microseconds=1))),
    user_ids=frozenset(),
)
@example(
    value=dt.time(1, 2, tzinfo=dt.timezone(-dt.timedelta(hours=3, microseconds=5))),
    user_ids=frozenset(),
)
def test_any_nested_value_of_the_types_carried_round_trips(value: Any, user_ids: Any) -> None:
    round_trip(
        Event(
            "update",
            "things",
            "1",
            {"v": value},
            ("v",),
            data=value,
            user={"nested": value},
            user_ids=user_ids,
        )
    )


# -- refused at encode -----------------------------------------------------------------


class Colour(enum.IntEnum):
    RED = 1


class Text(str):
    pass


class Shifty(dt.tzinfo):
    def utcoffset(self, when: Any) -> dt.timedelta:
        return dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("event", "where", "what"),
    [
        (Event("create", "c", "1", {"x": object()}), "values['x']", "type object"),
        (Event("create", "c", "1", {"x": Colour.RED}), "values['x']", "Colour"),
        (Event("create", "c", "1", {"x": Text("a")}), "values['x']", "Text"),
        (Event("create", "c", "1", {"x": bytearray(b"a")}), "values['x']", "bytearray"),
        (Event("create", "c", "1", {"x": {1, 2}}), "values['x']", "type set"),
        (
            Event("create", "c", "1", {"x": dt.datetime(2024, 1, 1, tzinfo=Shifty())}),
            "values['x']",
            "a datetime in a time zone of type tests.realtime.test_codec.Shifty",
        ),
        (
            Event("create", "c", "1", {"x": memoryview(b"abcd").cast("i")}),
            "values['x']",
            "a memoryview of format 'i'",
        ),
        (Event("create", "c", "1", collections.OrderedDict(x=1)), "values", "OrderedDict"),
        (Event("create", "c", "1", types.MappingProxyType({"x": 1})), "values", "mappingproxy"),
        (Event("custom", None, data=[1, {"a": [2, {"b": 1j}]}]), "data[1]['a'][1]['b']", "complex"),
        (Event("custom", None, data={1: "a"}), "data", "dict key of type int"),
        (Event("custom", None, data=({"k": ...},)), "data[0]['k']", "ellipsis"),
        (Event("custom", None, user_ids=frozenset({Colour.RED})), "user_ids[0]", "Colour"),
        # a field of a type its annotation does not admit, though the codec carries it
        (Event("custom", None, changed=["a"]), "changed", "a list, not tuple[str, ...]"),  # type: ignore[arg-type]
        (Event("custom", None, seq=1.0), "seq", "a float, not int"),  # type: ignore[arg-type]
        (
            Event("custom", None, values=[("a", 1)]),
            "values",
            "a list, not collections.abc.Mapping[str, typing.Any] | None",
        ),  # type: ignore[arg-type]
    ],
)
def test_other_types_are_refused_at_encode_naming_the_field_and_the_type(
    event: Event, where: str, what: str
) -> None:
    with pytest.raises(TypeError) as refused:
        CODEC.encode(event)
    message = str(refused.value)
    assert message.startswith(f"cannot encode event field {where}"), message
    assert what in message, message


def test_a_lone_surrogate_or_a_circle_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"event field values: a string holds a lone surrogate"):
        CODEC.encode(Event("create", "c", "1", {"x": "a\ud800"}))
    with pytest.raises(ValueError, match=r"event field data: a string holds a lone surrogate"):
        CODEC.encode(Event("custom", None, data={"\udfff": 1}))
    circle: list[Any] = []
    circle.append(circle)
    with pytest.raises(ValueError, match=r"event field data: nested too deeply, or in a circle"):
        CODEC.encode(Event("custom", None, data=circle))


def test_nesting_deeper_than_the_fast_writer_takes_still_round_trips() -> None:
    # orjson, the codec's writer, stops at 255 levels; json writes what it refuses.
    deep: Any = "bottom"
    for _ in range(300):
        deep = [deep]
    decoded = round_trip(Event("custom", None, data=deep))
    depth = 0
    while isinstance(decoded.data, list):
        decoded = dataclasses.replace(decoded, data=decoded.data[0])
        depth += 1
    assert (depth, decoded.data) == (300, "bottom")


def test_only_a_dataclass_has_a_codec() -> None:
    with pytest.raises(TypeError, match="not a dataclass"):
        EventCodec(dict)


# -- refused at decode -----------------------------------------------------------------


def _with_value(value: str) -> bytes:
    """An encoded event, `value` (JSON text) as its record's value "v"."""
    return b'[1,{"action":"create","collection":"c","values":{"v":' + value.encode() + b"}}]"


GOOD = _with_value("1")

MALFORMED = [
    b"",
    b" ",
    b"\xff\xfe",
    "[1,{}]".encode("utf-16"),
    b"not json",
    b"null",
    b"{}",
    b"[]",
    b"[1]",
    b"[1,{},3]",
    b"[1,[]]",
    b"[2," + GOOD[3:],
    b"[true," + GOOD[3:],
    b'["1",' + GOOD[3:],
    GOOD + b"x",
    GOOD + b"[]",
    b'[1,{"action":"create"}]',
    b'[1,{"action":"create","collection":"c","colour":"red"}]',
    b'[1,{"action":1,"collection":"c"}]',
    b'[1,{"action":"create","collection":"c","seq":"1"}]',
    b'[1,{"action":"create","collection":"c","changed":["a"]}]',
    b'[1,{"action":"create","collection":"c","client_ids":["a"]}]',
    b'[1,{"action":"create","collection":"c","values":[]}]',
    b'[1,{"action":"create","collection":"c","id":{"~u":"12345678123456781234567812345678"}}]',
    b'[1,{"~d":"1"}]',
    _with_value("NaN"),
    _with_value("-Infinity"),
    _with_value("[" * 100_000 + "]" * 100_000),
    _with_value('{"~":1}'),
    _with_value('{"~zz":1}'),
    _with_value('{"~i":"xyz"}'),
    _with_value('{"~i":12}'),
    _with_value('{"~f":"1.5"}'),
    _with_value('{"~f":null}'),
    _with_value('{"~d":"abc"}'),
    _with_value('{"~d":1.5}'),
    _with_value('{"~dt":"yesterday"}'),
    _with_value('{"~dt":1}'),
    _with_value('{"~dt":["2024-01-01T00:00:00"]}'),
    _with_value('{"~dt":["2024-01-01T00:00:00",2,null]}'),
    _with_value('{"~dt":["2024-01-01T00:00:00","1",null]}'),
    _with_value('{"~dt":["2024-01-01T00:00:00+01:00",0,"Europe/Paris"]}'),
    _with_value('{"~dt":["2024-01-01T00:00:00",0,"No/Such_Zone"]}'),
    _with_value('{"~dt":["2024-01-01T00:00:00",0,"../../etc/passwd"]}'),
    _with_value('{"~dt":["2024-01-01T00:00:00",0,"America"]}'),
    _with_value('{"~dt":["2024-01-01T00:00:00",0,86400000000]}'),  # a day: no offset
    _with_value('{"~dt":["2024-01-01T00:00:00",0,true]}'),
    _with_value('{"~dt":["2024-01-01T00:00:00+01:00",0,5]}'),
    _with_value('{"~dt":[1,0,null]}'),
    _with_value('{"~da":"2024-02-30"}'),
    _with_value('{"~t":"25:00"}'),
    _with_value('{"~td":[1,2]}'),
    _with_value('{"~td":[1.5,0,0]}'),
    _with_value('{"~td":[true,0,0]}'),
    _with_value('{"~td":[1000000000,0,0]}'),
    _with_value('{"~td":"1 day"}'),
    _with_value('{"~u":"zz"}'),
    _with_value('{"~u":123}'),
    _with_value('{"~b":"!!!!"}'),
    _with_value('{"~b":"AAA"}'),
    _with_value('{"~b":["AA=="]}'),
    _with_value('{"~mv":"A"}'),
    _with_value('{"~ipa":"300.1.1.1"}'),
    _with_value('{"~ipa":167772161}'),
    _with_value('{"~ipn":"10.0.0.1/8"}'),
    _with_value('{"~ipi":"nowhere"}'),
    _with_value('{"~tu":"abc"}'),
    _with_value('{"~fs":"abc"}'),
    _with_value('{"~fs":[[1]]}'),
    _with_value('{"~fs":[{"a":1}]}'),
]


@pytest.mark.parametrize("data", MALFORMED, ids=lambda data: data[:70].decode("latin-1"))
def test_malformed_bytes_are_a_value_error(data: bytes) -> None:
    assert CODEC.decode(GOOD).values == {"v": 1}
    with pytest.raises(ValueError, match=r"^not an encoded event"):
        CODEC.decode(data)


def test_decode_takes_any_bytes_like_object() -> None:
    data = CODEC.encode(EVERY_FIELD)
    for bytes_like in (data, bytearray(data), memoryview(data)):
        assert same_event(CODEC.decode(bytes_like), EVERY_FIELD)
