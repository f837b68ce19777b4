"""`expand=` on the records API, over a real server, on SQLite and PostgreSQL: each item
carries its related records as the reader may see them (a user as their public fields,
an unreadable or missing one absent), a page costs one query per related model, and an
unknown, hidden or non-foreign-key name is the same 400."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from runtime.users import User
from tests.conftest import PASSWORD
from tests.databases import both_databases
from tests.expand_models import TASKS, Project, Queries, Task, logged_queries
from tests.support import TIMEOUT, LiveServer, assert_error


@pytest.fixture
def queries() -> Iterator[Queries]:
    with logged_queries() as handler:
        yield handler


@contextlib.contextmanager
def _client(server: LiveServer, user: str | None) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        if user is not None:
            login = client.post("/auth/login", json={"username": user, "password": PASSWORD})
            assert login.is_success, login.text
        yield client


@both_databases
def test_a_page_expands_as_each_reader_may_see(
    server: LiveServer, users: dict[str, User], queries: Queries
) -> None:
    alice, bob = users["alice"], users["bob"]
    mine = Project.create(name="mine", owner=alice)
    theirs = Project.create(name="theirs", owner=bob)
    first = Task.create(title="t0", author=alice, project=mine, reviewer=bob)
    for i in range(1, 20):
        author = alice if i % 2 else bob
        project = (mine, theirs, None)[i % 3]
        Task.create(title=f"t{i}", author=author, project=project, parent=first)
    with _client(server, "alice") as http:
        queries.sql.clear()
        reply = http.get(TASKS, params={"expand": "author,project,parent", "per_page": 50})
        assert reply.status_code == 200, reply.text
        related = [sql for sql in queries.sql if "IN (" in sql.upper()]
        items = reply.json()["items"]
        plain = http.get(TASKS, params={"per_page": 50}).json()["items"]
    # One query per related model for the whole page, none per row.
    assert len(related) == 3, related
    assert len(items) == 20
    assert all("expand" not in item for item in plain)
    assert [{k: v for k, v in item.items() if k != "expand"} for item in items] == plain
    for item in items:
        i = int(item["title"][1:])
        author = alice if (i % 2 or i == 0) else bob
        assert item["expand"]["author"] == {
            "id": author.id,
            "username": author.username,
            "is_admin": False,
        }
        if i == 0 or i % 3 == 0:  # alice's own project: readable, its hidden field not shown
            assert item["expand"]["project"] == {"id": mine.id, "name": "mine", "owner": alice.id}
        else:  # bob's (her read rule says no) or none: absent
            assert "project" not in item["expand"]
        if i:
            assert item["expand"]["parent"]["id"] == first.id
        else:
            assert "parent" not in item["expand"]


@both_databases
def test_one_record_expands_and_a_renamed_user_shows_renamed(
    server: LiveServer, users: dict[str, User]
) -> None:
    task = Task.create(title="t", author=users["alice"])
    with _client(server, None) as visitor:
        got = visitor.get(f"{TASKS}/{task.id}", params={"expand": "author"}).json()
        assert got["expand"] == {
            "author": {"id": users["alice"].id, "username": "alice", "is_admin": False}
        }
        User.update(username="alicia").where(User.id == users["alice"].id).execute()
        got = visitor.get(f"{TASKS}/{task.id}", params={"expand": "author"}).json()
        assert got["expand"]["author"]["username"] == "alicia"
        assert "expand" not in visitor.get(f"{TASKS}/{task.id}").json()
        assert visitor.get(f"{TASKS}/{task.id}", params={"expand": " "}).json() == {
            k: v for k, v in got.items() if k != "expand"
        }


@both_databases
def test_unknown_hidden_and_plain_fields_are_refused_alike(
    server: LiveServer, users: dict[str, User]
) -> None:
    task = Task.create(title="t", author=users["alice"])
    with _client(server, None) as visitor, _client(server, "bob") as bob:
        answers = []
        for client, name in [
            (visitor, "nope"),  # unknown
            (visitor, "reviewer"),  # hidden from all
            (visitor, "parent"),  # hidden from visitors by visible_fields
            (visitor, "title"),  # not a foreign key
            (bob, "author,reviewer"),
        ]:
            for path in (TASKS, f"{TASKS}/{task.id}"):
                error = assert_error(client.get(path, params={"expand": name}), 400, "bad_request")
                field = name.split(",")[-1]
                assert error == {
                    "code": "bad_request",
                    "message": f"Cannot expand: no foreign key {field!r} to expand.",
                    "reason": "expand",
                    "field": field,
                }
                answers.append(error["message"].replace(repr(field), "?"))
        assert len(set(answers)) == 1  # no oracle: the same answer for each
        assert bob.get(TASKS, params={"expand": "parent"}).status_code == 200
        too_many = ",".join(["author"] * 3 + ["project", "parent"] + [f"x{i}" for i in range(6)])
        error = assert_error(visitor.get(TASKS, params={"expand": too_many}), 400, "bad_request")
        assert (error["reason"], error["field"]) == ("expand", "x5")
