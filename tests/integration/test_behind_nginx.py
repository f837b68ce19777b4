"""docs/scaling.md's nginx configuration, run as written: a real nginx in front of two
server processes on one Redis, real WebSocket and SSE clients through it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.cluster import logged_in, server_cluster
from tests.docs_apps import blocks
from tests.nginx import NginxProxy, start_nginx
from tests.realtime_client import Client
from tests.redis_server import RedisServer
from tests.sse_client import ids_of, stream
from tests.support import TIMEOUT, ServerProcess

pytestmark = pytest.mark.cluster  # server processes of their own

RECORDS = "/api/collections/messages/records"
SECTION = "Behind nginx"
OPENED = "runtime_realtime_connections_opened_total"


def site(ports: list[int], listen: int) -> str:
    """The docs' configuration, with the test's ports for the docs' ones."""
    (example,) = blocks("docs/scaling.md", "nginx", section=SECTION)
    docs_upstreams = "    server 127.0.0.1:8001;\n    server 127.0.0.1:8002;\n"
    assert example.count(docs_upstreams) == 1 and example.count("listen 80;") == 1
    upstreams = "".join(f"    server 127.0.0.1:{port};\n" for port in ports)
    return example.replace(docs_upstreams, upstreams).replace(
        "listen 80;", f"listen 127.0.0.1:{listen};"
    )


@pytest.fixture
def server_settings() -> dict[str, str]:
    """RUNTIME_* variables of the servers; a test parametrizes it to change them."""
    return {}


@pytest.fixture
def servers(
    tmp_path: Path, redis_server: RedisServer, server_settings: dict[str, str]
) -> Iterator[list[ServerProcess]]:
    (trust_the_proxy,) = blocks("docs/scaling.md", "toml", section=SECTION)
    with server_cluster(
        tmp_path, redis_server, config=trust_the_proxy, settings=server_settings
    ) as cluster:
        yield cluster


@pytest.fixture
def proxy(servers: list[ServerProcess]) -> Iterator[NginxProxy]:
    nginx = start_nginx(lambda port: site([s.port for s in servers], port))
    yield nginx
    nginx.close()


def connections_opened(server: ServerProcess) -> int:
    """Realtime connections the process has opened, asked straight (not through nginx)."""
    metrics = httpx.get(f"{server.url}/realtime/metrics", timeout=TIMEOUT).text
    return sum(int(line.split()[-1]) for line in metrics.splitlines() if line.startswith(OPENED))


async def test_writes_through_nginx_reach_its_websocket_and_sse_clients_in_one_order(
    proxy: NginxProxy, servers: list[ServerProcess]
) -> None:
    async with AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(await Client.connect(proxy)) for _ in range(2)]
        streams = [
            await stack.enter_async_context(stream(proxy, "?pattern=messages")) for _ in range(2)
        ]
        for socket in sockets:
            await socket.ok_subscribe("messages")
        for sse in streams:
            assert (await sse.frame())["type"] == "connected"
            assert (await sse.frame())["type"] == "subscribed"
        http = await stack.enter_async_context(logged_in(proxy, "alice"))
        texts = [f"message {i}" for i in range(10)]
        for text in texts:  # round robin: through one process, then the other
            response = await http.post(RECORDS, json={"text": text})
            assert response.status_code == 201, response.text
        heard = [await socket.events(10) for socket in sockets]
        heard += [[await sse.frame() for _ in range(10)] for sse in streams]
        assert [e["record"]["text"] for e in heard[0]] == texts
        ids = [e["id"] for e in heard[0]]
        assert all([e["id"] for e in events] == ids for events in heard)
    # No stickiness: nginx spread the clients over both processes.
    assert all(connections_opened(server) >= 1 for server in servers)


async def attempt(
    stack: AsyncExitStack, proxy: NginxProxy, source: str, headers: dict[str, str] | None = None
) -> bool:
    """Whether a WebSocket from `source` through the proxy is let in (and then kept
    open on `stack`), or refused as one too many from its address."""
    ws = await websockets.connect(
        f"{proxy.ws_url}/realtime/subscribe",
        additional_headers=headers or {},
        open_timeout=TIMEOUT,
        local_addr=(source, 0),
    )
    stack.push_async_callback(ws.close)
    try:
        first: dict[str, Any] = json.loads(await ws.recv())
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 4429, closed
        return False
    assert first["type"] == "connected", first
    return True


@pytest.mark.parametrize("server_settings", [{"RUNTIME_REALTIME_MAX_CONNECTIONS_PER_ADDRESS": "1"}])
async def test_the_servers_count_the_client_address_that_nginx_forwards(
    proxy: NginxProxy,
) -> None:
    async with AsyncExitStack() as stack:
        # One connection from each of four addresses: all let in, wherever nginx sends
        # them. Had the servers counted the proxy's address, a process would refuse
        # its second.
        sources = [f"127.0.0.{i}" for i in range(2, 6)]
        assert [await attempt(stack, proxy, source) for source in sources] == [True] * 4
        # Three more from 127.0.0.2, two claiming other addresses (nginx appends the
        # real one, right of the claim). Each process holds at most one connection per
        # address, so at least two of the three are refused.
        more = [
            await attempt(stack, proxy, "127.0.0.2"),
            await attempt(stack, proxy, "127.0.0.2", {"X-Forwarded-For": "198.51.100.7"}),
            await attempt(stack, proxy, "127.0.0.2", {"X-Forwarded-For": "127.0.0.3"}),
        ]
        assert more.count(False) >= 2, more
    log = proxy.access_log
    assert all(f"\n{source} - " in f"\n{log}" for source in sources), log


async def test_an_sse_clients_posts_through_nginx_reach_its_stream(proxy: NginxProxy) -> None:
    async with (
        stream(proxy) as sse,
        httpx.AsyncClient(base_url=proxy.url, timeout=TIMEOUT) as http,
        logged_in(proxy, "alice") as writer,
    ):
        stream_id = ids_of(await sse.frame())
        # Two POSTs one after the other: round robin sends one of them to the process
        # that does not hold the stream.
        for pattern in ("messages", "messages/1"):
            body = {**stream_id, "subscribe": [pattern]}
            reply = await http.post("/realtime/subscribe", json=body)
            assert reply.status_code == 200, reply.text
            assert reply.json()["results"][0]["type"] == "subscribed", reply.text
        assert (await writer.post(RECORDS, json={"text": "posted"})).status_code == 201
        assert (await sse.frame())["record"]["text"] == "posted"
