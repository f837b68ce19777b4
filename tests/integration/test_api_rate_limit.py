"""The records API's rate limit (`api.rate_limit`): every request counts, a user's
against that user and a visitor's against their address; past the limit a request is
answered 429 with Retry-After and does nothing. Over a real server; across processes on
Redis: tests/integration/test_shared_rate_limits.py."""

from __future__ import annotations

import httpx
import pytest

from runtime.config import Config, ConfigError, load_config
from runtime.db import database
from runtime.demo import create_demo_app
from tests.conftest import PASSWORD
from tests.support import TIMEOUT, LiveServer, assert_error

PATH = "/api/collections/messages/records"


@pytest.fixture
def config(config: Config) -> Config:
    return config.replace(api={"rate_limit": "3/minute"})


def client(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=TIMEOUT)


def log_in(http: httpx.Client, username: str) -> None:
    response = http.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text


def test_past_the_limit_a_users_request_is_refused_and_does_nothing(server: LiveServer) -> None:
    with client(server) as alice, client(server) as bob:
        log_in(alice, "alice")
        log_in(bob, "bob")  # logging in is not the records API: not counted
        assert alice.get(PATH).status_code == 200
        assert alice.get(PATH).status_code == 200
        assert alice.post(PATH, json={"text": "third"}).status_code == 201
        refused = alice.post(PATH, json={"text": "fourth"})
        assert_error(refused, 429, "rate_limited")
        # At most two windows: the last one's count slides out over the next one.
        assert 1 <= int(refused.headers["Retry-After"]) <= 120
        assert_error(alice.get(PATH), 429, "rate_limited")
        # Bob counts apart, and sees that the refused write did nothing.
        listed = bob.get(PATH)
        assert listed.status_code == 200
        assert [item["text"] for item in listed.json()["items"]] == ["third"]


def test_a_visitors_requests_count_against_their_address(server: LiveServer) -> None:
    with client(server) as visitor:
        for _ in range(3):
            assert visitor.get(PATH).status_code == 200  # messages: read_rule "public"
        assert_error(visitor.get(PATH), 429, "rate_limited")
        # Refused answers count too: a denied write is a request all the same.
    with client(server) as alice:
        log_in(alice, "alice")  # the same address, but a user: her own count
        assert alice.get(PATH).status_code == 200


async def test_an_empty_limit_counts_nothing(config: Config) -> None:
    app = create_demo_app(config.replace(api={"rate_limit": ""}))
    try:
        assert app.extensions["runtime"].api_limit is None
        client = app.test_client()
        for _ in range(10):
            assert (await client.get(PATH)).status_code == 200
    finally:
        database.close()


def test_the_setting_is_checked_and_named() -> None:
    assert load_config(None, environ={"RUNTIME_API_RATE_LIMIT": ""}).api.rate_limit == ""
    with pytest.raises(ConfigError, match=r"^api\.rate_limit: "):
        load_config(None, environ={"RUNTIME_API_RATE_LIMIT": "lots"})
