"""The HTTP API over a real Hypercorn server with a real HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import peewee
import pytest

from runtime import BaseModel
from tests.conftest import PASSWORD
from tests.databases import both_databases
from tests.support import TIMEOUT, LiveServer, assert_error


class Keyed(BaseModel):
    """Records keyed by text."""

    key = peewee.CharField(primary_key=True)
    read_rule = "public"
    write_rule = "nobody"

    class Meta:
        table_name = "test_keyed"


def client(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=TIMEOUT)


@contextmanager
def logged_in(server: LiveServer, username: str) -> Iterator[httpx.Client]:
    with client(server) as c:
        response = c.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        yield c


def test_login_sets_a_hardened_session_cookie(server: LiveServer) -> None:
    with client(server) as c:
        response = c.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        assert response.status_code == 200
        assert response.json()["user"] == {"id": 1, "username": "alice", "is_admin": False}
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "expires=" in cookie
        assert "secure" not in cookie.replace("samesite", "")
        assert c.get("/auth/me").json()["user"]["username"] == "alice"


def test_the_cookie_is_set_at_login_only(server: LiveServer) -> None:
    """It lasts what the server-side session lasts (from the login), so answers to a
    logged-in client's requests do not sign it again."""
    with logged_in(server, "alice") as c:
        for response in (
            c.get("/auth/me"),
            c.post("/api/collections/messages/records", json={"text": "hi"}),
            c.get("/api/collections/messages/records"),
        ):
            assert response.status_code < 300, response.text
            assert "set-cookie" not in response.headers
        assert c.get("/auth/me").json()["user"]["username"] == "alice"


def test_login_accepts_a_form(server: LiveServer) -> None:
    with client(server) as c:
        response = c.post("/auth/login", data={"username": "bob", "password": PASSWORD})
        assert response.status_code == 200
        assert c.get("/auth/me").json()["user"]["username"] == "bob"


def test_unknown_user_and_wrong_password_look_the_same(server: LiveServer) -> None:
    with client(server) as c:
        unknown = assert_error(
            c.post("/auth/login", json={"username": "nobody", "password": "x"}), 401, "unauthorized"
        )
        wrong = assert_error(
            c.post("/auth/login", json={"username": "alice", "password": "x"}), 401, "unauthorized"
        )
        assert unknown == wrong
        assert_error(c.get("/auth/me"), 401, "unauthorized")


def test_failed_logins_are_rate_limited_per_username(server: LiveServer) -> None:
    with client(server) as c:
        for _ in range(5):
            c.post("/auth/login", json={"username": "alice", "password": "wrong"})
        response = c.post("/auth/login", json={"username": "alice", "password": PASSWORD})
        assert_error(response, 429, "rate_limited")
        assert int(response.headers["retry-after"]) >= 1
        # Another username from the same address still gets in.
        assert c.post("/auth/login", json={"username": "bob", "password": PASSWORD}).is_success


@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice"},
        {"username": 1, "password": "x"},
        {"username": "", "password": "x"},
        {"username": "a" * 1000, "password": "x"},
    ],
)
def test_login_rejects_bad_bodies(server: LiveServer, body: dict[str, object]) -> None:
    with client(server) as c:
        assert_error(c.post("/auth/login", json=body), 400, "bad_request")


@pytest.mark.parametrize(
    "content, content_type",
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"[" * 100_000, "application/json"),
        (b'{"username": NaN}', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"username=alice", "text/plain"),
    ],
)
def test_malformed_bodies_get_json_errors(
    server: LiveServer, content: bytes, content_type: str
) -> None:
    with client(server) as c:
        response = c.post("/auth/login", content=content, headers={"content-type": content_type})
        assert_error(response, 400, "bad_request")


def test_logout_revokes_every_copy_of_the_cookie(server: LiveServer) -> None:
    with logged_in(server, "alice") as c:
        stolen = httpx.Client(base_url=server.url, cookies=c.cookies, timeout=TIMEOUT)
        assert stolen.get("/auth/me").is_success
        assert c.post("/auth/logout").is_success
        assert_error(stolen.get("/auth/me"), 401, "unauthorized")
        assert_error(c.get("/auth/me"), 401, "unauthorized")
        stolen.close()


def test_password_change_and_user_removal_end_sessions(server: LiveServer) -> None:
    from runtime.users import User

    with logged_in(server, "alice") as alice, logged_in(server, "bob") as bob:
        User.get(User.username == "alice").set_password("a new password")
        assert_error(alice.get("/auth/me"), 401, "unauthorized")
        assert bob.get("/auth/me").is_success
        User.get(User.username == "bob").delete_instance()
        assert_error(bob.get("/auth/me"), 401, "unauthorized")


def test_tampered_cookie_is_ignored(server: LiveServer) -> None:
    with client(server) as c:
        c.cookies.set("session", "eyJzaWQiOiJ4In0.forged.signature")
        assert_error(c.get("/auth/me"), 401, "unauthorized")


@both_databases
def test_messages_crud(server: LiveServer) -> None:
    records = "/api/collections/messages/records"
    with logged_in(server, "alice") as alice, client(server) as visitor:
        created = alice.post(records, json={"text": "hello"})
        assert created.status_code == 201, created.text
        message = created.json()
        assert message["text"] == "hello" and message["author"] == 1
        url = f"{records}/{message['id']}"
        assert visitor.get(url).json() == message
        listing = visitor.get(records).json()
        assert listing["items"] == [message] and listing["total_items"] == 1
        updated = alice.patch(url, json={"text": "edited"})
        assert updated.json()["text"] == "edited"
        assert_error(visitor.patch(url, json={"text": "x"}), 401, "unauthorized")
        assert_error(visitor.post(records, json={"text": "x"}), 401, "unauthorized")
        assert alice.delete(url).status_code == 204
        assert_error(visitor.get(url), 404, "not_found")
        assert_error(alice.delete(url), 404, "not_found")


@both_databases
def test_paging(server: LiveServer) -> None:
    records = "/api/collections/messages/records"
    with logged_in(server, "alice") as alice:
        for i in range(7):
            assert alice.post(records, json={"text": f"m{i}"}).status_code == 201
        page = alice.get(records, params={"page": 2, "per_page": 3}).json()
        assert [m["text"] for m in page["items"]] == ["m3", "m4", "m5"]
        assert (page["page"], page["per_page"], page["total_items"], page["total_pages"]) == (
            2,
            3,
            7,
            3,
        )
        newest = alice.get(records, params={"sort": "-id", "per_page": 1}).json()
        assert newest["items"][0]["text"] == "m6"
        for params in ({"page": "0"}, {"per_page": "10000"}, {"page": "x"}, {"sort": "nope"}):
            assert_error(alice.get(records, params=params), 400, "bad_request")


@both_databases
def test_notes_are_owner_only(server: LiveServer) -> None:
    records = "/api/collections/notes/records"
    with logged_in(server, "alice") as alice, logged_in(server, "bob") as bob:
        note = alice.post(records, json={"title": "secret", "body": "mine"}).json()
        assert note["owner"] == 1
        assert bob.get(records).json()["items"] == []
        assert alice.get(records).json()["items"] == [note]
        assert_error(bob.get(f"{records}/{note['id']}"), 404, "not_found")
        assert_error(bob.patch(f"{records}/{note['id']}", json={"title": "x"}), 404, "not_found")
        assert_error(bob.delete(f"{records}/{note['id']}"), 404, "not_found")
        assert_error(alice.patch(f"{records}/{note['id']}", json={"owner": 2}), 400, "bad_request")
    with client(server) as visitor:
        assert_error(visitor.get(records), 401, "unauthorized")


@both_databases
def test_hidden_fields_never_leave_the_server(server: LiveServer) -> None:
    with logged_in(server, "alice") as alice, logged_in(server, "root") as root:
        me = alice.get("/api/collections/users/records/1")
        assert me.status_code == 200 and "password_hash" not in me.json()
        everyone = root.get("/api/collections/users/records").json()["items"]
        assert len(everyone) == 3 and all("password_hash" not in u for u in everyone)
        assert alice.get("/api/collections/users/records").json()["total_items"] == 1
        assert_error(alice.get("/api/collections/users/records/2"), 404, "not_found")
        assert_error(
            root.post("/api/collections/users/records", json={"username": "x"}), 403, "forbidden"
        )
        assert_error(
            root.patch("/api/collections/users/records/1", json={"password_hash": "x"}),
            403,
            "forbidden",
        )


@pytest.mark.parametrize(
    "body, code",
    [
        ({}, "bad_request"),
        ({"text": 5}, "bad_request"),
        ({"text": None}, "bad_request"),
        ({"text": "x" * 501}, "bad_request"),
        ({"text": "ok", "unknown": 1}, "bad_request"),
        ({"text": "ok", "id": 99}, "bad_request"),
        ({"text": "ok", "author": 2}, "bad_request"),
        ({"text": "ok", "created_at": "2020-01-01"}, "bad_request"),
    ],
)
def test_record_validation(server: LiveServer, body: dict[str, object], code: str) -> None:
    with logged_in(server, "alice") as alice:
        assert_error(alice.post("/api/collections/messages/records", json=body), 400, code)


@both_databases
def test_errors_are_json_everywhere(server: LiveServer) -> None:
    with logged_in(server, "alice") as c:
        assert_error(c.get("/api/collections/nope/records"), 404, "not_found")
        assert_error(c.get("/api/collections/auth_sessions/records"), 404, "not_found")
        assert_error(c.get("/api/collections/messages/records/abc"), 404, "not_found")
        assert_error(
            c.get("/api/collections/messages/records/99999999999999999999"), 404, "not_found"
        )
        assert_error(c.get("/no/such/path"), 404, "not_found")
        response = c.put("/api/collections/messages/records")
        assert_error(response, 405, "method_not_allowed")
        too_big = c.post(
            "/api/collections/messages/records",
            content=b'{"text": "' + b"x" * (2 * 1024 * 1024) + b'"}',
            headers={"content-type": "application/json"},
        )
        assert_error(too_big, 413, "payload_too_large")
        assert too_big.headers["connection"] == "close"  # the unread body ends the connection
        assert_error(
            c.post("/api/collections/messages/records", data={"text": "form"}), 400, "bad_request"
        )


@both_databases
def test_values_the_database_cannot_keep_are_bad_requests(server: LiveServer, backend: str) -> None:
    records = "/api/collections/messages/records"
    with logged_in(server, "alice") as alice:
        nul = alice.post(records, json={"text": "a\u0000b"})
        if backend == "postgresql":  # its text has no NUL character
            assert_error(nul, 400, "bad_request")
        else:
            assert nul.status_code == 201 and nul.json()["text"] == "a\x00b"
        assert_error(alice.get(f"{records}/{2**40}"), 404, "not_found")  # past a 32-bit id
    Keyed.create(key="a")
    keyed = "/api/collections/test_keyed/records"
    with client(server) as visitor:
        assert visitor.get(f"{keyed}/a").json() == {"key": "a"}
        for key in ("a%00", "%00", "%ED%A0%80"):  # NUL (no text of PostgreSQL's), a surrogate
            assert_error(visitor.get(f"{keyed}/{key}"), 404, "not_found")
