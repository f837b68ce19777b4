"""The session cookie's signature is checked once per value, and nothing else changes:
a tampered, foreign-keyed or expired value is refused whether or not it was seen, each
request gets a session of its own, and what is remembered is bounded."""

from __future__ import annotations

import time
from typing import Any

import pytest
from quart import Quart, session

from runtime import session_cookies
from runtime.session_cookies import SessionCookies

LIFETIME = 3600


def make_app(secret: str = "s" * 32) -> Quart:
    app = Quart(__name__)
    app.secret_key = secret
    app.config["PERMANENT_SESSION_LIFETIME"] = LIFETIME
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False  # as the runtime sets it
    app.session_interface = SessionCookies()

    @app.get("/set")
    async def set_value() -> str:
        session["token"] = "t-123"
        session["items"] = ["a"]
        session.permanent = True
        return "set"

    @app.get("/read")
    async def read() -> dict[str, Any]:
        seen = {"token": session.get("token"), "items": list(session.get("items", []))}
        session.get("items", []).append("changed by this request")  # its own copy
        return seen

    return app


async def signed_cookie(app: Quart) -> str:
    response = await app.test_client().get("/set")
    header = response.headers["Set-Cookie"]
    return header.split(";", 1)[0].split("=", 1)[1]


async def read(app: Quart, cookie: str) -> dict[str, Any]:
    client = app.test_client()
    response = await client.get("/read", headers={"Cookie": f"session={cookie}"})
    body: dict[str, Any] = await response.get_json()
    return body


def count_signature_checks(monkeypatch: pytest.MonkeyPatch, interface: SessionCookies) -> list[int]:
    calls = [0]
    original = interface.get_signing_serializer

    def counted(app: Quart) -> Any:
        calls[0] += 1
        return original(app)

    monkeypatch.setattr(interface, "get_signing_serializer", counted)
    return calls


async def test_a_value_is_verified_once_and_each_request_gets_its_own_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app()
    cookie = await signed_cookie(app)
    interface = app.session_interface
    assert isinstance(interface, SessionCookies)
    checks = count_signature_checks(monkeypatch, interface)
    for _ in range(3):
        assert await read(app, cookie) == {"token": "t-123", "items": ["a"]}
    assert checks[0] == 1


async def test_tampered_and_foreign_values_are_refused_every_time() -> None:
    app = make_app()
    cookie = await signed_cookie(app)
    assert (await read(app, cookie))["token"] == "t-123"  # remembered as good
    payload, signature = cookie.rsplit(".", 1)
    tampered = f"{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for _ in range(2):
        assert (await read(app, tampered))["token"] is None
    other = make_app(secret="o" * 32)
    other.session_interface = app.session_interface  # the same memory, another key
    assert (await read(other, cookie))["token"] is None


async def test_an_expired_value_is_refused_though_it_was_verified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app()
    cookie = await signed_cookie(app)
    assert (await read(app, cookie))["token"] == "t-123"
    later = time.time() + LIFETIME + 2
    monkeypatch.setattr(session_cookies.time, "time", lambda: later)
    assert (await read(app, cookie))["token"] is None


async def test_what_is_remembered_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_cookies, "VERIFIED_MAX", 5)
    app = make_app()
    interface = app.session_interface
    assert isinstance(interface, SessionCookies)
    for _ in range(12):
        cookie = await signed_cookie(app)
        await read(app, cookie + "")  # each login signs a new value (its time, its data)
        assert len(interface._verified) <= 5
    assert (await read(app, cookie))["token"] == "t-123"
