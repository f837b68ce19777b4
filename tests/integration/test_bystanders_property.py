"""The bystander property, over a live server: whatever JSON a client sends, through
`publish` (WebSocket frames and SSE POSTs), `emit` (to a handler that broadcasts what it
got and answers with it) and the records API, every bystander (a WebSocket and an SSE
subscriber) receives every event that was accepted, in order and nothing else, and the
sender's connections live on. Nothing is lost either way: what the test's own reading
of the rules says is fine is accepted, and what is not is refused with the right code.

The JSON is written as text, so that it can hold what `json.dumps` never writes: lone
surrogate escapes (`"\\ud800"`), nesting around the 100-level limit, numbers past any
float or past Python's digits, the NaN and Infinity literals, strings that look like them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart import Quart

from runtime import Realtime, create_app
from runtime.config import Config
from runtime.db import database
from runtime.demo import Message  # registered: the app serves every collection
from runtime.demo.models import TEXT_LIMIT
from runtime.realtime import Sender
from runtime.users import User
from tests.conftest import PASSWORD
from tests.realtime_client import Client
from tests.sse_client import SSEStream, stream
from tests.support import TIMEOUT, LiveServer, assert_error

MAX_MESSAGE_SIZE = 4096
pytestmark = pytest.mark.parametrize(
    "realtime_settings",
    [{"message_rate_limit": "1000000/second", "max_message_size": MAX_MESSAGE_SIZE}],
)

realtime = Realtime()
realtime.channel("lobby", read_rule="authenticated", write_rule="authenticated")
served: dict[str, Any] = {}  # the app being served, for the handler


@realtime.on("echo")
async def echo(data: Any, sender: Sender) -> Any:
    """Everyone on the lobby hears what the client sent, and the client gets it back."""
    await served["app"].realtime_broadcast_async("echoed", data, collection="lobby")
    return data


@pytest.fixture
def app(config: Config) -> Iterator[Quart]:
    app = served["app"] = create_app(config, realtime=realtime)
    assert Message.collection_name() == "messages"
    yield app
    served.clear()
    database.close()


@pytest.fixture
def cookies(server: LiveServer, users: dict[str, User]) -> dict[str, str]:
    """A session for each of alice (who attacks) and bob (who stands by), once per test:
    logging in hashes a password."""
    found = {}
    for name in ("alice", "bob"):
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as http:
            response = http.post("/auth/login", json={"username": name, "password": PASSWORD})
            assert response.status_code == 200, response.text
            found[name] = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    return found


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """One HTTP client for every example (each request names its user's cookie): making
    one costs tens of milliseconds (its TLS settings), three took most of an example."""
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        yield client


# -- arbitrary JSON, as text ----------------------------------------------------------

text = st.text(st.characters(codec="utf-8"), max_size=12)  # any character UTF-8 takes
# ... and text with lone surrogates among them (a reversed pair too): JSON escapes only.
broken = st.tuples(text, st.characters(categories=["Cs"]), text).map("".join)
strings = st.one_of(
    text.map(json.dumps),
    text.map(json.dumps),
    broken.map(json.dumps),
    st.sampled_from(['"NaN"', '"Infinity"', '"-0"', '"1e400"', '"\\udc00\\ud800"']),
)
numbers = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(10**40, 10**60).map(str),  # past any 64-bit integer
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["-0", "1e308", "5e-324", "9" * 5000]),  # the last: past Python's digits
)
literals = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1E999"])  # not JSON
leaves = st.one_of(st.sampled_from(["null", "true", "false"]), numbers, strings, literals)


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"


values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4).map(_array)
        | st.lists(st.tuples(strings, inner), max_size=4).map(_object)
    ),
    max_leaves=10,
)
# Around the custom events' limit of 100 levels, well within the message size.
deep = st.tuples(st.integers(95, 110), values).map(lambda d: "[" * d[0] + d[1] + "]" * d[0])
huge = st.just('"' + "x" * 5000 + '"')  # past the message size, and a message's text
payloads = st.one_of(values, values, values, deep, huge)
# Each example sends one payload each way, in an order of its own. A record's text is a
# string (a field of the demo's messages): mostly strings there.
WAYS = {
    "ws publish": payloads,
    "ws emit": payloads,
    "sse publish": payloads,
    "sse emit": payloads,
    "records": st.one_of(strings, strings, payloads),
}
plans = st.tuples(st.permutations(list(WAYS)), st.fixed_dictionaries(WAYS)).map(
    lambda order_and_payloads: [(way, order_and_payloads[1][way]) for way in order_and_payloads[0]]
)


# -- the clients ------------------------------------------------------------------------


@dataclass
class Peers:
    attacker: Client
    attacker_stream: str  # the connection id of alice's SSE stream, which her POSTs drive
    bystanders: tuple[Client, SSEStream]
    http: httpx.AsyncClient
    cookies: dict[str, str]
    expected: list[tuple[Any, ...]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def peers(
    server: LiveServer, http: httpx.AsyncClient, cookies: dict[str, str]
) -> AsyncIterator[Peers]:
    alice, bob = ({"Cookie": cookies[name]} for name in ("alice", "bob"))
    async with (
        await Client.connect(server, headers=alice) as attacker,
        await Client.connect(server, headers=bob) as ws,
        stream(server, "", cookie=cookies["alice"], http=http) as attacker_stream,
        stream(server, "?pattern=lobby&pattern=messages", cookie=cookies["bob"], http=http) as sse,
    ):
        connection_id = (await attacker_stream.frame())["connection_id"]
        await ws.ok_subscribe("lobby")
        await ws.ok_subscribe("messages")
        assert [(await sse.frame())["type"] for _ in range(3)] == ["connected", *["subscribed"] * 2]
        yield Peers(attacker, connection_id, (ws, sse), http, cookies)


_ids = itertools.count()


async def act(peers: Peers, way: str, payload: str) -> None:
    """Send `payload` one way and check the answer against `verdict`; what is accepted
    joins the events bystanders expect."""
    if way == "records":
        body = f'{{"text":{payload}}}'
        response = await post(peers, "/api/collections/messages/records", body)
        want = verdict(way, body)
        if want != "ok":
            assert_error(response, 400, want)
            return
        assert response.status_code == 201, (body, response.text)
        peers.expected.append(("messages", response.json()["id"]))
        return
    transport, verb = way.split()
    request_id = f"a{next(_ids)}"
    name = "echo" if verb == "emit" else "said"
    item = f'{{"id":"{request_id}","channel":"lobby","name":"{name}","data":{payload}}}'
    if transport == "ws":
        frame = f'{{"type":"{verb}",' + item[1:]
        want = verdict(way, frame)
        # A frame too big to read, or not JSON, has no id to answer with.
        unread = want == "message_too_big" or standard_json(frame) is _NOT_JSON
        await peers.attacker.ws.send(frame)
        reply = await peers.attacker.recv()
    else:
        want, unread = verdict(way, item), False
        body = f'{{"connection_id":"{peers.attacker_stream}","{verb}":[{item}]}}'
        response = await post(peers, "/realtime/subscribe", body)
        if standard_json(item) in (_NOT_JSON, _NOT_TEXT):  # the body is refused whole
            assert_error(response, 400, "bad_request")
            return
        assert response.status_code == 200, response.text
        [reply] = response.json()["results"]
    assert reply["id"] == (None if unread else request_id), reply
    if want != "ok":
        assert (reply["type"], reply["code"]) == ("error", want), (payload, reply)
        return
    assert reply["type"] == "ack", (payload, reply)
    data = json.loads(payload)
    if name == "echo":
        assert reply["data"] == data
        peers.expected.append(("lobby", "echoed", data, None))
    else:
        peers.expected.append(("lobby", "said", data, reply["data"]["event_id"]))


async def post(peers: Peers, path: str, body: str) -> httpx.Response:
    headers = {"Cookie": peers.cookies["alice"], "Content-Type": "application/json"}
    return await peers.http.post(path, content=body.encode("utf-8"), headers=headers)


# -- what the server must answer, by the documented rules (not by its code) ------------

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_JSON, _NOT_TEXT = object(), object()


def verdict(way: str, sent: str) -> str:
    """ "ok", or the error code the server must answer with, for the text `sent` one way
    (a records API body, a WebSocket frame, an item of an SSE POST)."""
    value = standard_json(sent)
    if way == "records":  # the demo's messages: text of at most TEXT_LIMIT characters
        text = value.get("text") if isinstance(value, dict) else None
        return "ok" if isinstance(text, str) and len(text) <= TEXT_LIMIT else "bad_request"
    if way.startswith("ws") and len(sent.encode()) > MAX_MESSAGE_SIZE:  # before its JSON
        return "message_too_big"
    if value is _NOT_JSON or value is _NOT_TEXT:
        return "bad_request"
    if way.startswith("sse"):  # an item is measured as the frame it would be
        again = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        over = {len(again) > MAX_MESSAGE_SIZE, len(again.encode()) > MAX_MESSAGE_SIZE}
        assert len(over) == 1, f"too near the limit to tell, in characters or bytes: {sent}"
        if over == {True}:
            return "message_too_big"
    if levels(value["data"]) > 101:  # custom events' data: 100 levels below the top
        # A publish is refused; the echo handler's broadcast raises (app code's error).
        return "internal_error" if way.endswith("emit") else "bad_request"
    return "ok"


def standard_json(text: str) -> Any:
    """`text` as JSON by the standard, else _NOT_JSON (no NaN or Infinity, no number past
    a float's range or past Python's digits); _NOT_TEXT if it holds a lone surrogate."""

    def refuse(literal: str) -> float:
        raise ValueError(literal)

    def finite(literal: str) -> float:
        number = float(literal)
        if not math.isfinite(number):
            raise ValueError(literal)
        return number

    try:
        value = json.loads(text, parse_constant=refuse, parse_float=finite)
    except ValueError:
        return _NOT_JSON
    if _LONE_SURROGATE.search(json.dumps(value, ensure_ascii=False)):  # keys too
        return _NOT_TEXT
    return value


def levels(value: Any) -> int:
    """How many values deep `value` goes: 1 for a scalar or an empty array or object."""
    inner = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return 1 + max(map(levels, inner), default=0)


def matches(event: dict[str, Any], expected: tuple[Any, ...]) -> bool:
    """Whether a bystander's event is the one expected (a record by its id; a custom
    event by its name and data, and by its id where the sender learnt it)."""
    if expected[0] == "messages":
        return event["collection"] == "messages" and event["record"]["id"] == expected[1]
    _, name, data, event_id = expected
    same = (event["collection"], event["name"], event["data"]) == ("lobby", name, data)
    return same and event_id in (None, event["id"])


async def check_bystanders(peers: Peers) -> None:
    """The attacker's connections live: each publishes once more. Then every bystander has
    received exactly the accepted events, in order, those two last."""
    for way in ("ws publish", "sse publish"):
        await act(peers, way, '"still here"')
        assert peers.expected[-1][1:3] == ("said", "still here"), peers.expected[-1]
    ws, sse = peers.bystanders
    for event in peers.expected:
        got = await ws.recv_type("event")
        assert matches(got, event), (got, event)
        assert await sse.frame() == got
    await ws.expect_silence()


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same plans on every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=plans)
async def test_bystanders_receive_every_accepted_event_whatever_is_sent(
    server: LiveServer,
    http: httpx.AsyncClient,
    cookies: dict[str, str],
    plan: list[tuple[str, str]],
) -> None:
    async with peers(server, http, cookies) as them:
        for way, payload in plan:
            await act(them, way, payload)
        await check_bystanders(them)
