"""Client addresses behind reverse proxies: metrics and the login rate limit trust
X-Forwarded-For only from `app.trusted_proxies`, over a real server."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from runtime.config import Config
from runtime.proxies import forwarded_client, parse_networks
from tests.conftest import PASSWORD
from tests.support import TIMEOUT, LiveServer, assert_error

TRUSTED = parse_networks(("10.0.0.0/8", "127.0.0.1"))


@pytest.mark.parametrize(
    "peer, forwarded_for, client",
    [
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not a proxy: header ignored
        ("127.0.0.1", [], "127.0.0.1"),  # the proxy itself
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["127.0.0.1, 198.51.100.1"], "198.51.100.1"),  # a client's claim, left
        ("127.0.0.1", ["198.51.100.9, 198.51.100.1, 10.0.0.2"], "198.51.100.1"),  # two proxies
        ("127.0.0.1", ["198.51.100.9", "198.51.100.1"], "198.51.100.1"),  # two header lines
        ("127.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # only proxies: the farthest
        ("127.0.0.1", ["unknown"], "unknown"),
        ("127.0.0.1", [" 2001:DB8::1 "], "2001:db8::1"),
        ("127.0.0.1", ["::ffff:198.51.100.1"], "198.51.100.1"),
        ("::ffff:127.0.0.1", ["198.51.100.1"], "198.51.100.1"),  # a dual-stack socket
        (None, ["198.51.100.1"], None),
    ],
)
def test_forwarded_client(peer: str | None, forwarded_for: list[str], client: str | None) -> None:
    assert forwarded_client(peer, forwarded_for, TRUSTED) == client


def test_networks_parse() -> None:
    assert parse_networks(("10.0.0.0/8", "::1")) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    with pytest.raises(ValueError):
        parse_networks(("proxy.internal",))


@pytest.fixture
def trusted_proxies() -> list[str]:
    return []


@pytest.fixture
def config(config: Config, trusted_proxies: list[str]) -> Config:
    return config.replace(
        app={"trusted_proxies": trusted_proxies},
        auth={"login_limit_per_address": "2/minute", "login_limit_per_user": "100/minute"},
    )


def metrics_status(server: LiveServer, headers: dict[str, str], username: str = "") -> int:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        if username:
            body = {"username": username, "password": PASSWORD}
            assert c.post("/auth/login", json=body).status_code == 200
        return c.get("/realtime/metrics", headers=headers).status_code


def test_metrics_stay_open_to_a_local_caller(server: LiveServer) -> None:
    assert metrics_status(server, {}) == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "198.51.100.1"},
        {"X-Forwarded-For": "127.0.0.1"},
        {"Forwarded": "for=198.51.100.1"},
        {"X-Real-IP": "198.51.100.1"},
    ],
)
@pytest.mark.parametrize("trusted_proxies", [[], ["127.0.0.1"]])
def test_a_proxied_request_is_never_local(
    server: LiveServer, headers: dict[str, str], trusted_proxies: list[str]
) -> None:
    """A proxy on this host makes every request come from loopback: whatever the
    configuration, a forwarded one does not get the loopback caller's pass."""
    assert metrics_status(server, headers) == 403
    assert metrics_status(server, headers, username="alice") == 403
    assert metrics_status(server, headers, username="root") == 200  # admins pass anywhere


def fail_login(c: httpx.Client, username: str, forwarded_for: str) -> httpx.Response:
    return c.post(
        "/auth/login",
        json={"username": username, "password": "wrong"},
        headers={"X-Forwarded-For": forwarded_for},
    )


@pytest.mark.parametrize("trusted_proxies", [["127.0.0.0/8"]])
def test_behind_a_trusted_proxy_logins_are_limited_per_forwarded_client(
    server: LiveServer,
) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert fail_login(c, "alice", "198.51.100.1").status_code == 401
        assert fail_login(c, "bob", "198.51.100.1").status_code == 401
        assert_error(fail_login(c, "root", "198.51.100.1"), 429, "rate_limited")
        # The client's own claim is left of what the proxy appended: it changes nothing.
        assert_error(fail_login(c, "root", "203.0.113.7, 198.51.100.1"), 429, "rate_limited")
        # Another client behind the same proxy is not punished for the first one.
        assert fail_login(c, "root", "198.51.100.2").status_code == 401


def test_without_trusted_proxies_x_forwarded_for_is_ignored(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert fail_login(c, "alice", "198.51.100.1").status_code == 401
        assert fail_login(c, "bob", "198.51.100.2").status_code == 401
        assert_error(fail_login(c, "root", "198.51.100.3"), 429, "rate_limited")
