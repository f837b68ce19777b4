"""Random and mutated input against a real server: WebSocket frames, SSE queries and SSE
POST bodies. Whatever arrives, the answer is an error frame or a 4xx, never a 500 or a
crash; the connection that sent it lives on; and another client keeps receiving events.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.demo import Message
from runtime.users import User
from tests.realtime_client import Client
from tests.support import TIMEOUT, LiveServer

pytestmark = pytest.mark.parametrize(
    "realtime_settings", [{"message_rate_limit": "1000000/second", "max_message_size": 4096}]
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
patterns = st.one_of(
    st.sampled_from(
        ["messages", "messages/1", "*", "mess*", "notes", "users/1", "a/b/c", "", "*/x"]
    ),
    st.text(max_size=140),
)
fields = {
    "type": st.sampled_from(["subscribe", "unsubscribe", "ping", "pong", "emit", ""]) | json_values,
    "id": st.text(max_size=80) | st.integers() | json_values,
    "pattern": patterns | json_values,
    "since": st.text(max_size=140) | json_values,
    "filter": st.dictionaries(st.text(max_size=10), json_values, max_size=20) | json_values,
    "snapshot": st.booleans()
    | st.fixed_dictionaries(
        {},
        optional={"sort": st.text(max_size=70) | json_values, "limit": st.integers() | json_values},
    )
    | json_values,
}
frames = st.fixed_dictionaries({}, optional=fields)
raw = st.one_of(
    frames.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=300),
    st.sampled_from(['{"type":"subscribe","pattern":"\\ud800"}', "[" * 5000, '{"a":1e999}']),
)


@FUZZ
@given(messages=st.lists(raw, min_size=1, max_size=8))
async def test_websocket_frames(
    server: LiveServer, users: dict[str, User], messages: list[Any]
) -> None:
    async with await Client.connect(server) as fuzzer, await Client.connect(server) as bystander:
        await bystander.ok_subscribe("messages")
        for message in messages:
            await fuzzer.ws.send(message)
        # The fuzzer's connection still works: its frames were answered in order, and
        # a ping now is answered too.
        await fuzzer.send({"type": "ping", "id": "last"})
        while (frame := await fuzzer.recv())["type"] != "pong":
            assert frame["type"] in ("error", "subscribed", "unsubscribed", "event"), frame
        Message.create(text="still here", author=users["alice"])
        assert (await bystander.recv_type("event"))["record"]["text"] == "still here"


queries = st.lists(
    st.tuples(
        st.sampled_from(["pattern", "snapshot", "last_event_id", "other"]),
        st.text(max_size=40) | patterns,
    ),
    max_size=6,
)


@FUZZ
@given(
    query=queries,
    body=frames | json_values,
    items=st.lists(frames | patterns | json_values, max_size=5),
)
async def test_sse_queries_and_posts(
    server: LiveServer, query: list[tuple[str, str]], body: Any, items: list[Any]
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        headers = {"Accept": "text/event-stream"}
        async with http.stream(
            "GET", "/realtime/subscribe", params=query, headers=headers
        ) as response:
            assert response.status_code in (200, 400), response.status_code
            if response.status_code != 200:
                return
            lines = response.aiter_lines()
            stream = {}
            async for line in lines:
                if line.startswith("data: "):
                    connected = json.loads(line[6:])
                    stream = {k: connected[k] for k in ("connection_id", "stream_key")}
                    break
            for payload in (
                body,
                {**stream, "subscribe": items},
                {**stream, "unsubscribe": items},
            ):
                posted = await http.post("/realtime/subscribe", json=payload)
                assert posted.status_code in (200, 400, 403, 404, 429), posted.text
                json.loads(posted.text)  # always JSON, never a stack trace
