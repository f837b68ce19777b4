"""The wire protocol: parsing client frames, building and encoding server frames."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest

from runtime.realtime.patterns import PatternKind, parse_pattern
from runtime.realtime.protocol import (
    RATE_LIMITED_CLOSE,
    CloseCode,
    ErrorCode,
    Ping,
    Pong,
    ProtocolError,
    Subscribe,
    Unsubscribe,
    connected,
    encode,
    encode_batch,
    error,
    parse_client_frame,
    ping,
    pong,
    subscribed,
    unsubscribed,
)

MAX = 64 * 1024


def parse(text: str | bytes, max_size: int = MAX) -> Any:
    return parse_client_frame(text, max_size=max_size)


def fails(text: str | bytes, max_size: int = MAX) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_client_frame(text, max_size=max_size)
    return info.value


def frame(**fields: Any) -> str:
    return json.dumps(fields)


# -- valid frames ---------------------------------------------------------------------


def test_subscribe_minimal() -> None:
    command = parse('{"type":"subscribe","id":"r1","pattern":"posts"}')
    assert command == Subscribe("r1", parse_pattern("posts"), None, None, False)
    assert command.pattern.text == "posts"


def test_subscribe_with_every_field() -> None:
    command = parse(
        frame(
            type="subscribe",
            id=7,
            pattern="posts/42",
            since="000001-0",
            filter={"a": "x", "b": 1, "c": 1.5, "d": True, "e": None},
            snapshot=True,
        )
    )
    assert isinstance(command, Subscribe)
    assert command.request_id == 7
    assert command.pattern.kind is PatternKind.RECORD
    assert command.since == "000001-0"
    assert command.filter == {"a": "x", "b": 1, "c": 1.5, "d": True, "e": None}
    assert command.snapshot is True


def test_null_optional_fields_mean_absent() -> None:
    command = parse(
        frame(type="subscribe", id=None, pattern="*", since=None, filter=None, snapshot=None)
    )
    assert command == Subscribe(None, parse_pattern("*"))


def test_missing_id_is_none() -> None:
    assert parse('{"type":"subscribe","pattern":"posts"}').request_id is None


def test_empty_filter_is_no_filter() -> None:
    assert parse(frame(type="subscribe", pattern="posts", filter={})).filter is None
    assert parse(frame(type="subscribe", pattern="posts", filter=" ")).filter is None


def test_expand_is_kept_as_names_to_check_at_subscribe() -> None:
    # Checked against the model's foreign keys and the user by the broker, not here.
    command = parse(frame(type="subscribe", pattern="posts", expand=["author", "nope"]))
    assert command.expand == ("author", "nope")
    assert parse(frame(type="subscribe", pattern="posts", expand=None)).expand == ()


def test_a_filter_expression_is_kept_as_text_to_bind_at_subscribe() -> None:
    # Parsed and bound to the model and the user by the broker (it knows both), not here.
    command = parse(frame(type="subscribe", pattern="posts", filter="title ~ 'a' && (("))
    assert command.filter == "title ~ 'a' && (("


def test_unknown_fields_are_ignored() -> None:
    command = parse(frame(type="subscribe", pattern="posts", future={"x": [1, 2]}, v=2))
    assert command == Subscribe(None, parse_pattern("posts"))


def test_duplicate_keys_last_wins() -> None:
    assert parse('{"type":"ping","type":"subscribe","pattern":"a"}').pattern.text == "a"


def test_unsubscribe() -> None:
    command = parse(frame(type="unsubscribe", id="r2", pattern="posts/*"))
    assert command == Unsubscribe("r2", parse_pattern("posts"))


def test_ping_and_pong() -> None:
    assert parse('{"type":"ping"}') == Ping()
    assert parse('{"type":"pong"}') == Pong()


def test_bytes_are_utf8() -> None:
    command = parse('{"type":"subscribe","id":"é","pattern":"posts"}'.encode())
    assert command.request_id == "é"


def test_id_limits() -> None:
    assert parse(frame(type="ping", id="x" * 64)) == Ping()
    assert parse(frame(type="subscribe", id=-1, pattern="a")).request_id == -1
    assert parse(frame(type="subscribe", id=0, pattern="a")).request_id == 0


def test_size_limit_counts_bytes() -> None:
    raw = '{"type":"subscribe","pattern":"posts","since":"' + "é" * 60 + '"}'
    limit = len(raw) + 10  # enough characters, not enough bytes
    assert fails(raw, limit).code is ErrorCode.MESSAGE_TOO_BIG
    assert parse(raw, len(raw.encode())).since == "é" * 60
    assert parse(raw.encode(), len(raw.encode())).since == "é" * 60


# -- every error path -------------------------------------------------------------------


@pytest.mark.parametrize("data", ["x" * (MAX + 1), b"x" * (MAX + 1)])
def test_oversize(data: str | bytes) -> None:
    exc = fails(data)
    assert exc.code is ErrorCode.MESSAGE_TOO_BIG
    assert exc.request_id is None


@pytest.mark.parametrize(
    "data", [b"\xff", b'{"type":"ping","id":"\xc3"}', b"\xed\xa0\x80", b"\xc0\xaf"]
)
def test_invalid_utf8(data: bytes) -> None:
    exc = fails(data)
    assert exc.code is ErrorCode.BAD_REQUEST
    assert "UTF-8" in exc.message


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "{'type': 'ping'}",
        '{"type":"ping",}',
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"type":"ping","x":NaN}',
        '{"type":"ping","x":Infinity}',
        '{"type":"ping","x":-Infinity}',
        '{"type":"subscribe","pattern":"a","filter":{"n":1e400}}',
        '{"type":"ping","id":' + "9" * 5000 + "}",
    ],
)
def test_malformed_json(text: str) -> None:
    exc = fails(text, max_size=10**6)
    assert exc.code is ErrorCode.BAD_REQUEST
    assert exc.message == "message is not valid JSON"
    assert exc.request_id is None


@pytest.mark.parametrize("text", ["[]", "1", '"ping"', "null", "true", '[{"type":"ping"}]'])
def test_not_an_object(text: str) -> None:
    assert fails(text).code is ErrorCode.BAD_REQUEST


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        '{"id":"r1"}',
        '{"type":"broadcast","id":"r1"}',
        '{"type":"PING","id":"r1"}',
        '{"type":1,"id":"r1"}',
        '{"type":null,"id":"r1"}',
        '{"type":["ping"],"id":"r1"}',
    ],
)
def test_unknown_type_keeps_the_request_id(text: str) -> None:
    exc = fails(text)
    assert exc.code is ErrorCode.BAD_REQUEST
    assert "'type'" in exc.message
    assert exc.request_id == ("r1" if "r1" in text else None)


@pytest.mark.parametrize(
    "bad_id", ["true", "false", "1.5", "1e3", "[]", '{"a":1}', '"' + "x" * 65 + '"', '"\\ud800"']
)
def test_bad_request_ids(bad_id: str) -> None:
    exc = fails('{"type":"subscribe","pattern":"posts","id":' + bad_id + "}")
    assert exc.code is ErrorCode.BAD_REQUEST
    assert exc.request_id is None  # an id that cannot be read is not echoed
    assert "'id'" in exc.message


@pytest.mark.parametrize(
    "text", ['{"id":"r","type":"subscribe"}', '{"id":"r","type":"unsubscribe","pattern":null}']
)
def test_missing_pattern(text: str) -> None:
    exc = fails(text)
    assert (exc.code, exc.request_id) == (ErrorCode.BAD_REQUEST, "r")


@pytest.mark.parametrize("kind", ["subscribe", "unsubscribe"])
@pytest.mark.parametrize("pattern", ["posts/", "", "a b", 42, ["posts"], {"p": 1}, "blog_*/1"])
def test_invalid_pattern(kind: str, pattern: object) -> None:
    exc = fails(frame(type=kind, id="r9", pattern=pattern))
    assert exc.code is ErrorCode.INVALID_PATTERN
    assert exc.request_id == "r9"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("since", ""),
        ("since", "x" * 129),
        ("since", 5),
        ("since", True),
        ("since", ["a"]),
        ("since", "\ud800"),
        ("snapshot", "yes"),
        ("snapshot", 1),
        ("snapshot", 0),
        ("filter", []),
        ("filter", 1),
        ("filter", True),
        ("filter", {"a": {"b": 1}}),
        ("filter", {"a": [1]}),
        ("filter", {str(i): i for i in range(17)}),
        ("expand", "author"),
        ("expand", [1]),
        ("expand", [""]),
        ("expand", ["x" * 65]),
        ("expand", {"author": True}),
        ("expand", ["a"] * 65),
    ],
)
def test_bad_subscribe_fields(field: str, value: object) -> None:
    exc = fails(frame(type="subscribe", id=3, pattern="posts", **{field: value}))
    assert (exc.code, exc.request_id) == (ErrorCode.BAD_REQUEST, 3)
    assert f"'{field}'" in exc.message


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"type": "publish", "channel": "c", "name": "n", "data": "\ud800"}, "'data'"),
        ({"type": "publish", "channel": "c", "name": "n", "data": [[{"k": "\udfff"}]]}, "'data'"),
        ({"type": "publish", "channel": "c", "name": "n", "data": {"\udc00\ud800": 1}}, "'data'"),
        ({"type": "emit", "name": "n", "data": {"deep": ["ok", "x\ud83d"]}}, "'data'"),
        ({"type": "subscribe", "pattern": "p", "filter": {"a": "\ud800"}}, "'filter'"),
        ({"type": "subscribe", "pattern": "p", "filter": {"\ud800": 1}}, "'filter'"),
        ({"type": "subscribe", "pattern": "p", "since": "\ud800"}, "'since'"),
        ({"type": "pong", "later": "\ud800"}, "a field"),
        ({"type": "ping", "\ud800": 1}, "a field"),
    ],
)
def test_text_utf8_cannot_encode_is_refused_wherever_it_is(
    fields: dict[str, Any], named: str
) -> None:
    """Anywhere in the frame, keys included: nothing that could not be sent on gets in,
    whether it comes as JSON's escape (in text or in bytes) or in the str itself."""
    escaped = frame(id="r", **fields)
    for text in (escaped, escaped.encode(), json.dumps({"id": "r", **fields}, ensure_ascii=False)):
        exc = fails(text)
        assert (exc.code, exc.request_id) == (ErrorCode.BAD_REQUEST, "r")
        assert named in exc.message and "surrogate" in exc.message
        assert encode(error(exc.request_id, exc.code, exc.message)).encode("utf-8")


def test_text_with_real_pairs_and_any_other_character_is_text() -> None:
    data = {"pair": "\N{GRINNING FACE}", "escaped": "\ud83d\ude00", "nul": "\x00", "bom": "\ufeff"}
    command = parse(frame(type="emit", id="e", name="n", data=data))
    assert command.data["pair"] == command.data["escaped"] == "\N{GRINNING FACE}"
    # Text as a frame may write it: a backslash before "u" (no escape), "é" as an escape
    # and written out; in a str and in bytes alike.
    for text, expected in [
        ('{"type":"emit","name":"n","data":"\\\\ud800"}', "\\ud800"),
        ('{"type":"emit","name":"n","data":"\\u00e9 é"}', "é é"),
    ]:
        assert parse(text).data == parse(text.encode()).data == expected


def test_field_limits_are_inclusive() -> None:
    command = parse(
        frame(type="subscribe", pattern="p", since="x" * 128, filter={str(i): i for i in range(16)})
    )
    assert command.since == "x" * 128
    assert len(command.filter) == 16


def test_error_messages_never_echo_much_input() -> None:
    long = "z" * 5000
    cases = [
        frame(type="subscribe", id="r", pattern="posts/" + long),
        frame(type="subscribe", id="r", pattern="pos ts" + long[:100]),
        frame(type=long),
        frame(type="subscribe", pattern="p", since=long),
        frame(type="subscribe", pattern="p", filter={long: [long]}),
        frame(type="ping", id=long),
        long,
    ]
    for text in cases:
        exc = fails(text)
        assert "z" * 61 not in exc.message
        assert len(exc.message) <= 160
        assert str(exc) == exc.message


def test_parsing_survives_garbage() -> None:
    rng = random.Random(1234)
    alphabet = '{}[]":,0123456789-.eE+ \\ntrufalsyNIinfpgbd\x00é\ud800'
    seeds = ['{"type":"subscribe","id":"r","pattern":"posts","filter":{"a":1}}', "[" * 50]
    for _ in range(3000):
        if rng.random() < 0.5:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        else:
            seed = list(rng.choice(seeds))
            for _ in range(rng.randrange(1, 4)):
                seed[rng.randrange(len(seed))] = rng.choice(alphabet)
            text = "".join(seed)
        data: str | bytes = text
        if rng.random() < 0.3:
            data = text.encode("utf-8", "surrogatepass")
        try:
            command = parse_client_frame(data, max_size=1000)
        except ProtocolError as exc:
            assert exc.code in ErrorCode
        else:
            assert isinstance(command, Subscribe | Unsubscribe | Ping | Pong)


# -- server frames ----------------------------------------------------------------------


def test_server_frame_shapes() -> None:
    assert connected("c1", {"id": 1, "username": "ann"}, 25) == {
        "type": "connected",
        "connection_id": "c1",
        "user": {"id": 1, "username": "ann"},
        "heartbeat": 25,
    }
    assert connected("c2", None, 30)["user"] is None
    assert connected("c3", None, 30, "key")["stream_key"] == "key"  # an SSE stream's
    assert subscribed("r1", "posts/*", True) == {
        "type": "subscribed",
        "id": "r1",
        "pattern": "posts/*",
        "recovered": True,
    }
    snapshot = {"records": [{"id": 1}], "position": "5-0", "complete": False}
    assert subscribed(2, "posts", False, snapshot)["snapshot"] == snapshot
    assert unsubscribed("r2", "posts") == {"type": "unsubscribed", "id": "r2", "pattern": "posts"}
    assert error(None, ErrorCode.FORBIDDEN, "no") == {
        "type": "error",
        "id": None,
        "code": "forbidden",
        "message": "no",
    }
    assert error("r", "rate_limited", "slow down", retry_after=3) == {
        "type": "error",
        "id": "r",
        "code": "rate_limited",
        "message": "slow down",
        "retry_after": 3,
    }
    assert ping() == {"type": "ping"}
    assert pong() == {"type": "pong"}


def test_error_rejects_unknown_codes() -> None:
    with pytest.raises(ValueError):
        error(None, "oops", "x")


def test_error_frame_from_protocol_error() -> None:
    exc = fails(frame(type="subscribe", id="r5", pattern="a/b/c"))
    sent = json.loads(encode(error(exc.request_id, exc.code, exc.message)))
    assert sent["code"] == "invalid_pattern"
    assert sent["id"] == "r5"


def test_codes_match_the_contract() -> None:
    assert {code.value for code in ErrorCode} == {
        "bad_request",
        "invalid_pattern",
        "forbidden",
        "rate_limited",
        "too_many_subscriptions",
        "message_too_big",
        "internal_error",  # added with client events: a handler that failed
        "unavailable",  # added: a snapshot's table locked by another transaction
    }
    assert {code.name: int(code) for code in CloseCode} == {
        "NORMAL": 1000,
        "GOING_AWAY": 1001,
        "MESSAGE_TOO_BIG": 1009,
        "INTERNAL_ERROR": 1011,  # added: writing to that connection failed (issue 15)
        "TRY_AGAIN_LATER": 1013,
        "SESSION_ENDED": 4401,
        "HEARTBEAT_TIMEOUT": 4408,
        "TOO_SLOW": 4429,
    }
    assert RATE_LIMITED_CLOSE == 4429


# -- encoding ---------------------------------------------------------------------------


def strict_loads(text: str) -> Any:
    def reject(name: str) -> None:
        raise AssertionError(f"{name} was sent")

    return json.loads(text, parse_constant=reject)


def test_encode_is_compact_and_keeps_unicode() -> None:
    text = encode({"type": "event", "record": {"title": "héllo ✓", "n": [1, 2]}})
    assert text == '{"type":"event","record":{"title":"héllo ✓","n":[1,2]}}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_encode_never_sends_nan_or_infinity(bad: float) -> None:
    value = {"a": bad, "b": [1.5, bad, {"c": (bad, 2)}], "d": "NaN", "e": Decimal("Infinity")}
    text = encode(value)
    assert "NaN" not in text.replace('"NaN"', "")
    assert "Infinity" not in text
    assert strict_loads(text) == {
        "a": None,
        "b": [1.5, None, {"c": [None, 2]}],
        "d": "NaN",
        "e": None,
    }
    assert value["a"] is bad  # the caller's frame is not modified


def test_encode_always_gives_text_utf8_can_encode() -> None:
    """A lone surrogate (only app code's data can still hold one) is written as JSON's
    escape: the frame can be sent, and reads back as it was; NaN still becomes null."""
    value = {"user": {"name": "\ud800é"}, "\udfff": [math.nan, "✓"]}
    text = encode(value)
    assert text.encode("utf-8") == text.encode("ascii")
    assert strict_loads(text) == {"user": {"name": "\ud800é"}, "\udfff": [None, "✓"]}


def test_encode_special_types() -> None:
    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")

    class Custom:
        def __str__(self) -> str:
            return "custom!"

    sent = strict_loads(
        encode(
            {
                "at": when,
                "day": dt.date(2024, 5, 6),
                "time": dt.time(7, 8),
                "price": Decimal("12.50"),
                "nan": Decimal("NaN"),
                "huge": Decimal("1e400"),
                "id": ident,
                "blob": b"\x00\xffhi",
                "other": Custom(),
                "code": ErrorCode.FORBIDDEN,
            }
        )
    )
    assert sent == {
        "at": "2024-05-06T07:08:09.123000+00:00",
        "day": "2024-05-06",
        "time": "07:08:00",
        "price": "12.50",  # exact: the same converter as records (runtime.json_values)
        "nan": None,
        "huge": "1E+400",
        "id": "12345678-1234-5678-1234-567812345678",
        "blob": "AP9oaQ==",
        "other": "custom!",
        "code": "forbidden",
    }


def test_encode_batch_does_not_reencode() -> None:
    frames = [encode(ping()), encode({"type": "event", "id": "1", "x": "é"})]
    batch = encode_batch(frames)
    assert batch == "[" + frames[0] + "," + frames[1] + "]"
    assert json.loads(batch) == [{"type": "ping"}, {"type": "event", "id": "1", "x": "é"}]
    assert encode_batch([]) == "[]"
    assert encode_batch([frames[0]]) == '[{"type":"ping"}]'
