"""A rule per action (read, create, update, delete) over the records API and the demo
pages, with a real server and client: "anyone logged in may post, only the author may
edit" can be said, and is enforced."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import peewee

from runtime import BaseModel
from runtime.users import User
from tests.conftest import PASSWORD
from tests.support import TIMEOUT, LiveServer, assert_error

MESSAGES = "/api/collections/messages/records"
TICKETS = "/api/collections/test_tickets/records"


def unlocked(user: Any, record: Ticket) -> bool:
    return not record.locked


class Ticket(BaseModel):
    title = peewee.CharField()
    locked = peewee.BooleanField(default=False)
    owner = peewee.ForeignKeyField(User, null=True)

    read_rule = "authenticated"
    create_rule = "owner"  # passes: the API makes the creating user the owner
    update_rule = unlocked  # sees the record before and after the change
    delete_rule = "admin"
    owner_field = "owner"

    class Meta:
        table_name = "test_tickets"


class Archive(BaseModel):
    title = peewee.CharField()

    read_rule = "public"
    create_rule = "nobody"

    class Meta:
        table_name = "test_archive"


@contextmanager
def logged_in(server: LiveServer, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert c.post("/auth/login", json={"username": username, "password": PASSWORD}).is_success
        yield c


def test_anyone_logged_in_posts_only_the_author_edits_or_deletes(server: LiveServer) -> None:
    with logged_in(server, "alice") as alice, logged_in(server, "bob") as bob:
        message = alice.post(MESSAGES, json={"text": "alice's"}).json()
        url = f"{MESSAGES}/{message['id']}"
        assert bob.post(MESSAGES, json={"text": "bob's"}).status_code == 201
        assert_error(bob.patch(url, json={"text": "hijacked"}), 403, "forbidden")
        assert_error(bob.delete(url), 403, "forbidden")
        assert bob.get(url).json()["text"] == "alice's"  # still readable, unchanged
        assert alice.patch(url, json={"text": "edited"}).json()["text"] == "edited"
        assert alice.delete(url).status_code == 204
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as visitor:
        assert_error(visitor.post(MESSAGES, json={"text": "x"}), 401, "unauthorized")


def test_owner_create_function_update_admin_delete(server: LiveServer) -> None:
    with logged_in(server, "alice") as alice, logged_in(server, "bob") as bob:
        created = alice.post(TICKETS, json={"title": "broken"})
        assert created.status_code == 201 and created.json()["owner"] == 1
        url = f"{TICKETS}/{created.json()['id']}"
        assert bob.patch(url, json={"title": "fixed?"}).json()["title"] == "fixed?"
        # The function rule sees the new values too: locking is a change it refuses.
        assert_error(bob.patch(url, json={"locked": True}), 403, "forbidden")
        assert alice.get(url).json()["locked"] is False
        assert_error(alice.delete(url), 403, "forbidden")
    with logged_in(server, "root") as root:
        assert root.delete(url).status_code == 204


def test_a_collection_nobody_creates_in(server: LiveServer) -> None:
    with logged_in(server, "root") as root:
        assert_error(
            root.post("/api/collections/test_archive/records", json={"title": "x"}),
            403,
            "forbidden",
        )


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert match, html
    return match.group(1)


def test_the_demo_pages_apply_the_same_rules(server: LiveServer) -> None:
    with logged_in(server, "alice") as alice, logged_in(server, "bob") as bob:
        message = alice.post(MESSAGES, json={"text": "keep me"}).json()
        delete = f"/messages/{message['id']}/delete"
        refused = bob.post(delete, data={"csrf_token": csrf(bob.get("/messages").text)})
        assert_error(refused, 403, "forbidden")
        assert alice.get(f"{MESSAGES}/{message['id']}").status_code == 200
        done = alice.post(delete, data={"csrf_token": csrf(alice.get("/messages").text)})
        assert done.status_code == 302
        assert_error(alice.get(f"{MESSAGES}/{message['id']}"), 404, "not_found")
        # Another user's note: as if it did not exist (owner-only collection).
        note = alice.post("/api/collections/notes/records", json={"title": "mine"}).json()
        token = csrf(bob.get("/notes").text)
        assert bob.post(f"/notes/{note['id']}/delete", data={"csrf_token": token}).is_redirect
        assert alice.get(f"/api/collections/notes/records/{note['id']}").status_code == 200
