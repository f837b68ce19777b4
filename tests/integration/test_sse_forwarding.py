"""An SSE stream's POSTs work on whichever process they reach (issue 14): a POST for a
stream another process holds goes to it through Redis, is carried out there as its own
(the same checks, the same answer), and comes back. Real `python -m runtime serve`
processes on one redis-server, a real SSE client on one, its POSTs through the other."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster import create_user, logged_in
from tests.docs_apps import blocks
from tests.redis_server import RedisServer, start_redis
from tests.sse_client import SSEStream, ids_of, stream
from tests.support import TIMEOUT, ServerProcess, assert_error

pytestmark = pytest.mark.cluster  # server processes of their own

RECORDS = "/api/collections/messages/records"

# The demo, and a client event whose answer says which process and stream it ran on.
APP = """
import os

from runtime import Realtime
from runtime.demo import create_demo_app

app = create_demo_app()


@Realtime.of(app).on("whoami")
def whoami(data, sender):
    return {"pid": os.getpid(), "connection_id": sender.connection_id, "data": data}
"""


@pytest.fixture
def pair(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[ServerProcess]]:
    """Two processes of that app on one database and one Redis (docs/scaling.md's
    configuration)."""
    (example,) = blocks("docs/scaling.md", "toml", section="Several processes on Redis")
    config = tmp_path / "config.toml"
    config.write_text(example.replace("redis://127.0.0.1:6379/0", redis_server.database()))
    (tmp_path / "whoami.py").write_text(APP)
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "shared.sqlite3"),
        "RUNTIME_APP_SECRET_KEY": "a-secret-key-both-processes-share-0123456789",
    }
    with ExitStack() as stack:
        first = stack.enter_context(ServerProcess(config, settings, app="whoami:app"))
        create_user(tmp_path, settings, "alice")
        create_user(tmp_path, settings, "bob")
        second = stack.enter_context(ServerProcess(config, settings, app="whoami:app"))
        yield [first, second]


def _cookie(http: httpx.AsyncClient) -> str:
    return "; ".join(f"{k}={v}" for k, v in http.cookies.items())


async def _post(
    server: ServerProcess, body: dict[str, Any], cookie: str | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=2 * TIMEOUT) as http:
        headers = {"Cookie": cookie} if cookie else {}
        return await http.post("/realtime/subscribe", json=body, headers=headers)


async def _next_event(sse: SSEStream) -> dict[str, Any]:
    while True:
        frame = await sse.frame()
        if frame["type"] == "event":
            return frame


async def test_a_streams_posts_through_another_process_do_what_they_do_on_its_own(
    pair: list[ServerProcess],
) -> None:
    first, second = pair
    async with logged_in(first, "alice") as alice:
        cookie = _cookie(alice)
        async with (
            stream(first, cookie=cookie) as here,  # changed through its own process
            stream(first, cookie=cookie) as there,  # changed through the other
        ):
            here_ids, there_ids = ids_of(await here.frame()), ids_of(await there.frame())
            pid = (await _post(first, {**here_ids, "emit": [{"name": "whoami"}]}, cookie)).json()
            pid = pid["results"][0]["data"]["pid"]

            subscribe = {"subscribe": ["messages", {"pattern": "nope/x/y", "id": "bad"}]}
            local = await _post(first, {**here_ids, **subscribe}, cookie)
            forwarded = await _post(second, {**there_ids, **subscribe}, cookie)
            assert forwarded.status_code == local.status_code == 200
            assert forwarded.headers["content-type"] == local.headers["content-type"]
            assert forwarded.json() == local.json()
            assert [r["type"] for r in forwarded.json()["results"]] == ["subscribed", "error"]

            await alice.post(RECORDS, json={"text": "to both"})
            assert (await _next_event(there))["record"]["text"] == "to both"
            assert (await _next_event(here))["record"]["text"] == "to both"

            # A client event runs on the process and the stream that the POST names.
            emit = {"emit": [{"name": "whoami", "data": {"n": 1}, "id": "e"}]}
            (ack,) = (await _post(second, {**there_ids, **emit}, cookie)).json()["results"]
            assert ack["type"] == "ack" and ack["id"] == "e"
            assert ack["data"] == {
                "pid": pid,
                "connection_id": there_ids["connection_id"],
                "data": {"n": 1},
            }

            unsubscribe = {"unsubscribe": ["messages"]}
            local = await _post(first, {**here_ids, **unsubscribe}, cookie)
            forwarded = await _post(second, {**there_ids, **unsubscribe}, cookie)
            assert (
                forwarded.json()
                == local.json()
                == {"results": [{"type": "unsubscribed", "id": 0, "pattern": "messages"}]}
            )
            # Both are off `messages`: the next event either hears is on a topic both
            # take up again through the other process.
            resubscribe = {"subscribe": ["notes"]}
            assert (await _post(second, {**here_ids, **resubscribe}, cookie)).status_code == 200
            assert (await _post(first, {**there_ids, **resubscribe}, cookie)).status_code == 200
            await alice.post(RECORDS, json={"text": "to neither"})
            await alice.post("/api/collections/notes/records", json={"title": "to both"})
            assert (await _next_event(here))["collection"] == "notes"
            assert (await _next_event(there))["collection"] == "notes"


async def test_a_forwarded_post_is_refused_as_it_is_on_the_streams_own_process(
    pair: list[ServerProcess],
) -> None:
    first, second = pair
    async with (
        logged_in(second, "alice") as alice,
        logged_in(second, "bob") as bob,
        stream(first, cookie=_cookie(alice)) as alices,
        stream(first) as visitors,
    ):
        alice_ids, visitor_ids = ids_of(await alices.frame()), ids_of(await visitors.frame())
        change = {"subscribe": ["messages"]}
        cases: list[tuple[dict[str, Any], str | None, int]] = [
            ({**alice_ids, **change}, _cookie(bob), 403),  # another session
            ({**alice_ids, **change}, None, 403),  # no session
            ({**alice_ids, **change, "stream_key": visitor_ids["stream_key"]}, _cookie(alice), 403),
            ({**visitor_ids, **change, "stream_key": alice_ids["stream_key"]}, None, 403),
            ({"connection_id": visitor_ids["connection_id"], **change}, None, 403),  # no key
            ({**visitor_ids, **change}, _cookie(alice), 403),  # a visitor's stays a visitor's
            ({**alice_ids, "subscribe": "messages"}, _cookie(alice), 400),  # not a list
            ({"connection_id": "no-such-id", **change}, _cookie(alice), 404),
            ({"connection_id": "../../etc", **change}, _cookie(alice), 404),
            ({"connection_id": {"an": "object"}, **change}, _cookie(alice), 404),
        ]
        for body, cookie, status in cases:
            local = await _post(first, body, cookie)
            forwarded = await _post(second, body, cookie)
            code = {400: "bad_request", 403: "forbidden", 404: "not_found"}[status]
            assert assert_error(forwarded, status, code) == assert_error(local, status, code)
        # None of them changed a stream: the next event either hears is after a rightful
        # subscribe, and the records API's own.
        assert (await _post(second, {**visitor_ids, **change})).status_code == 200
        assert (await _post(second, {**alice_ids, **change}, _cookie(alice))).status_code == 200
        await alice.post(RECORDS, json={"text": "after"})
        assert (await _next_event(alices))["record"]["text"] == "after"
        assert (await _next_event(visitors))["record"]["text"] == "after"


async def test_a_websockets_id_is_never_forwarded_to(pair: list[ServerProcess]) -> None:
    from tests.realtime_client import Client

    first, second = pair
    async with await Client.connect(first) as websocket:
        body = {"connection_id": websocket.connected["connection_id"], "subscribe": ["messages"]}
        assert_error(await _post(second, body), 404, "not_found")
        assert_error(await _post(first, body), 404, "not_found")


async def test_the_rate_limit_is_the_streams_whichever_process_a_post_reaches(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "RUNTIME_APP_SECRET_KEY": "a-secret-key-both-processes-share-0123456789",
        "RUNTIME_REALTIME_BROKER": redis_server.database(),
        "RUNTIME_REALTIME_MESSAGE_RATE_LIMIT": "3/minute",
    }
    config = tmp_path / "config.toml"
    with ServerProcess(config, settings) as first, ServerProcess(config, settings) as second:
        async with stream(first) as sse:
            ids = ids_of(await sse.frame())
            body = {**ids, "subscribe": ["messages"]}
            for server in (first, second, first):
                assert (await _post(server, body)).status_code == 200
            for server in (second, first):
                error = assert_error(await _post(server, body), 429, "rate_limited")
                assert int(error["retry_after"]) >= 1


async def test_a_stream_whose_process_stopped_is_not_found_at_once(
    pair: list[ServerProcess],
) -> None:
    first, second = pair
    async with stream(first) as sse:
        ids = ids_of(await sse.frame())
        body = {**ids, "subscribe": ["messages"]}
        assert (await _post(second, body)).status_code == 200
        first.__exit__()  # stopped as a server stops (SIGTERM): it closes its streams
    # Its stream's entry went with it: no waiting for an answer that will not come.
    assert_error(await _post(second, body), 404, "not_found")


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop and start (it keeps its data)."""
    server = start_redis(persistent=True)
    yield server
    server.close()


async def test_without_redis_a_forwarded_post_is_unavailable_and_a_local_one_works(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    settings = {
        "RUNTIME_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "RUNTIME_REALTIME_BROKER": own_redis.url,
    }
    config = tmp_path / "config.toml"
    with ServerProcess(config, settings) as first, ServerProcess(config, settings) as second:
        async with stream(first) as sse:
            ids = ids_of(await sse.frame())
            own_redis.stop()
            for pattern in ("messages", "notes"):
                body = {**ids, "subscribe": [pattern]}
                response = await _post(second, body)
                assert_error(response, 503, "unavailable")
                assert int(response.headers["Retry-After"]) >= 1
                assert response.json()["error"]["retry_after"] >= 1
                assert (await _post(first, body)).status_code == 200  # its own process
            own_redis.start()
            body = {**ids, "unsubscribe": ["notes"]}
            response = await _post(second, body)  # its entry was kept: a persistent Redis
            assert response.status_code == 200, response.text
            assert response.json()["results"][0]["type"] == "unsubscribed"
