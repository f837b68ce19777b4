"""SSE framing, fuzzed against a reader written from the HTML standard (tests/sse_client.py):
whatever text a message carries, a browser reads back that one message, with its event
name, its id and its data, and nothing else. I/O-free.

A bare CR ends a line for an SSE reader as LF and CRLF do. Framed by LF alone, a
record's text "hi\\r\\rid: forged-1\\revent: messages:snapshot\\rdata: …" was read as a
second message of the attacker's choosing, with an id that browsers send back as
Last-Event-ID (issue 15, item 2).
"""

from __future__ import annotations

import re
from typing import Any

import jinja2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from quart import Quart

from runtime.realtime import protocol
from runtime.realtime.transports.html import Fragments
from runtime.realtime.transports.wire import frame_message, sse_message
from tests.sse_client import EventStreamParser, SSEMessage

FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

FORGERY = "hi\r\rid: forged-1\revent: messages:snapshot\rdata: LIST WIPED BY ALICE"

# Text made of what confuses readers (every kind of line end, field names, colons,
# NUL, a BOM, the line separators that SSE does not break at) and of any text at all.
_PIECES = [
    "\r", "\n", "\r\n", "\n\r", "\r\r", ":", " ", "data: ", "id: forged", "event: x",
    "retry: 1", "\0", "\ufeff", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "é", "😀",
]  # fmt: skip
texts = st.lists(st.sampled_from(_PIECES) | st.text(), max_size=12).map("".join)
one_line = texts.map(lambda text: re.sub("[\r\n]", "", text))
names = one_line.filter(bool)  # an empty `event:` reads as "message"
ids = one_line.map(lambda text: text.replace("\0", ""))


def read(stream: bytes, cuts: list[int] | None = None) -> list[SSEMessage]:
    """The blocks a reader gets from `stream`, delivered in pieces cut at `cuts`."""
    parser, blocks, start = EventStreamParser(), [], 0
    for cut in sorted(cuts or []):
        blocks += parser.feed(stream[start:cut])
        start = cut
    return blocks + parser.feed(stream[start:])


def as_read(data: str) -> str:
    """`data` as a reader gets it back: each line break an LF."""
    return re.sub("\r\n|\r", "\n", data)


# The reader is checked first, on the standard's own examples (its section 9.2.5).
def test_the_reader_reads_the_standards_examples_as_it_says() -> None:
    blocks = read(b"data: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n")
    assert [(m.data, m.last_event_id) for m in blocks] == [
        ("first event", "1"),
        ("second event", ""),  # an empty id resets it
        (" third event", ""),  # one space after the colon is dropped, no more
    ]
    blocks = read(b"data\n\ndata\ndata\n\ndata:")  # the last block never ended
    assert [m.data for m in blocks] == ["", "\n"]
    assert [m.data for m in read(b"data:test\n\ndata: test\n\n")] == ["test", "test"]
    blocks = read(b": test stream\n\ndata: first\r\ndata: second\r\rdata:third\r\r")
    assert [(m.dispatched, m.data) for m in blocks] == [
        (False, ""),  # a comment only
        (True, "first\nsecond"),
        (True, "third"),
    ]


@pytest.mark.parametrize("cut", range(1, 9))
def test_the_reader_pairs_a_cr_and_an_lf_across_reads(cut: int) -> None:
    blocks = read(b"data: a\r\n\r\ndata: \xc3\xa9\r\r", [cut, cut + 1])
    assert [m.data for m in blocks] == ["a", "\u00e9"]


@FUZZ
@given(data=texts, event=st.none() | names, id=st.none() | ids, cuts=st.lists(st.integers(0, 400)))
@example(data=FORGERY, event="messages:create", id="1-7", cuts=[])
def test_any_text_is_read_back_as_exactly_one_message(
    data: str, event: str | None, id: str | None, cuts: list[int]
) -> None:
    blocks = read(sse_message(data, event=event, id=id).encode(), cuts)
    assert len(blocks) == 1, blocks
    (message,) = blocks
    assert message.dispatched
    assert message.event == (event or "message")
    assert message.data == as_read(data)
    assert message.id == id
    assert message.last_event_id == (id or "")
    assert message.retry is None and message.comments == []


@settings(FUZZ, max_examples=80)
@given(st.lists(st.tuples(texts, st.none() | names, st.none() | ids), max_size=6))
def test_messages_one_after_another_never_run_into_each_other(
    sent: list[tuple[str, str | None, str | None]],
) -> None:
    stream = "".join(sse_message(data, event=event, id=id) for data, event, id in sent)
    blocks = read(stream.encode())
    assert [(m.data, m.event, m.id) for m in blocks] == [
        (as_read(data), event or "message", id) for data, event, id in sent
    ]
    last = ""
    for message, (_, _, id) in zip(blocks, sent, strict=True):
        last = id if id is not None else last  # a message without id: the last one stays
        assert message.last_event_id == last


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


@settings(FUZZ, max_examples=80)
@given(value=json_values, event_id=st.from_regex(r"[0-9a-f]{1,8}-[0-9]{1,6}", fullmatch=True))
def test_json_frames_are_read_back_byte_for_byte(value: Any, event_id: str) -> None:
    frames = [
        protocol.encode({"type": "event", "id": event_id, "action": "custom", "data": value}),
        protocol.encode({"type": "ack", "id": event_id, "data": value}),
        protocol.encode({"type": "close", "code": 4429, "reason": value}),
    ]
    blocks = read("".join(frame_message(frame) for frame in frames).encode())
    assert [(m.data, m.event, m.id) for m in blocks] == [
        (frames[0], "event", event_id),
        (frames[1], "ack", None),
        (frames[2], "close", None),
    ]


@pytest.mark.parametrize(
    "field",
    [{"event": "a\rb"}, {"event": "a\nb"}, {"id": "1\r"}, {"id": "\n1"}, {"id": "1\x002"}],
)
def test_a_line_break_in_an_event_name_or_an_id_is_refused(field: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="cannot hold a line break"):
        sse_message("data", **field)


@pytest.fixture(scope="module")
def fragments() -> Fragments:
    app = Quart(__name__)
    app.jinja_env.loader = jinja2.DictLoader(
        {"message.html": '<li id="m-{{ record_id }}">{{ record.text }}</li>'}
    )
    return Fragments(app, {"messages": "message.html"})


@FUZZ
@given(text=texts, record_id=texts.filter(bool), action=st.sampled_from(["create", "update"]))
@example(text=FORGERY, record_id="7", action="create")
def test_a_fragment_is_one_message_whatever_the_record_holds(
    fragments: Fragments, text: str, record_id: str, action: str
) -> None:
    frame = protocol.encode(
        {
            "type": "event",
            "id": "3f-12",
            "collection": "messages",
            "action": action,
            "topic": f"messages/{record_id}",
            "record": {"text": text},
        }
    )
    blocks = read(fragments.messages([frame]).encode())
    assert len(blocks) == 1, blocks
    (message,) = blocks
    assert message.id == message.last_event_id == "3f-12"
    name = "messages:create" if action == "create" else f"messages:update:{record_id}"
    if "\r" in name or "\n" in name:
        # No event name can hold that id: the stream gets the JSON event (and the log why).
        assert (message.event, message.data) == ("event", frame)
        return
    html = jinja2.Template('<li id="m-{{ i }}">{{ t }}</li>', autoescape=True).render(
        i=record_id, t=text
    )
    assert (message.event, message.data) == (name, as_read(html))


def test_a_snapshot_is_its_reply_and_one_message_of_html(fragments: Fragments) -> None:
    records = [{"id": 1, "text": FORGERY}, {"id": 2, "text": "plain"}]
    frame = protocol.encode(
        {
            "type": "subscribed",
            "id": 0,
            "pattern": "messages",
            "recovered": False,
            "snapshot": {"records": records, "position": "3f-1", "complete": True, "key": "id"},
        }
    )
    reply, snapshot = read(fragments.messages([frame]).encode())
    assert (reply.event, reply.data, reply.id) == ("subscribed", frame, None)
    assert snapshot.event == "messages:snapshot" and snapshot.id is None
    assert snapshot.data == as_read(f'<li id="m-1">{FORGERY}</li><li id="m-2">plain</li>')
