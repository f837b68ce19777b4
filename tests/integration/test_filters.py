"""`GET …/records?filter=` over a real server, on SQLite and PostgreSQL: docs/api.md's
examples, the read rule AND-ed with the filter, paging after it, @me, a bad filter's
400 with its position, and a hidden field refused as an unknown one."""

from __future__ import annotations

import json

from runtime.users import User
from tests.databases import both_databases
from tests.docs_apps import blocks
from tests.integration.test_http_api import client, logged_in
from tests.support import LiveServer, assert_error

RECORDS = "/api/collections/messages/records"
MESSAGES = {"alice": ["Tea at five", "draft: tea notes"], "bob": ["hello", "Coffee"]}
EVERY = {"Tea at five", "draft: tea notes", "hello", "Coffee"}

# docs/api.md's examples, in order: what alice (id 1) and a visitor get.
EXPECTED = [
    ({"Tea at five", "draft: tea notes"},) * 2,
    ({"Tea at five", "draft: tea notes"},) * 2,
    (EVERY, {"Tea at five", "hello", "Coffee"}),  # @me is null for the visitor
    ({"Tea at five", "draft: tea notes", "Coffee"},) * 2,
    (EVERY, EVERY),
]


@both_databases
def test_the_docs_examples_and_the_rules_around_them(server: LiveServer) -> None:
    (examples,) = blocks("docs/api.md", "filter", section="Filters")
    lines = examples.splitlines()
    assert len(lines) == len(EXPECTED)
    with logged_in(server, "alice") as alice, logged_in(server, "bob") as bob:
        for name, texts in MESSAGES.items():
            for text in texts:
                sender = alice if name == "alice" else bob
                assert sender.post(RECORDS, json={"text": text}).status_code == 201
        with client(server) as visitor:
            for expression, (for_alice, for_visitor) in zip(lines, EXPECTED, strict=True):
                for reader, expected in ((alice, for_alice), (visitor, for_visitor)):
                    reply = reader.get(RECORDS, params={"filter": expression})
                    assert reply.status_code == 200, (expression, reply.text)
                    assert {m["text"] for m in reply.json()["items"]} == expected, expression

        # paging and totals count what passes the filter
        page = alice.get(RECORDS, params={"filter": "text ~ 'e'", "per_page": 2, "page": 2})
        body = page.json()
        assert (body["total_items"], body["total_pages"]) == (4, 2)
        assert [m["text"] for m in body["items"]] == ["hello", "Coffee"]

        # the read rule still applies: bob's filter cannot reach alice's notes
        notes = "/api/collections/notes/records"
        assert alice.post(notes, json={"title": "plan", "body": "tea"}).status_code == 201
        assert alice.get(notes, params={"filter": "body ~ 'tea'"}).json()["total_items"] == 1
        assert bob.get(notes, params={"filter": "body ~ 'tea'"}).json()["total_items"] == 0
        assert bob.get(notes, params={"filter": "owner = 1"}).json()["total_items"] == 0


@both_databases
def test_bad_filters_are_400_with_their_position(server: LiveServer) -> None:
    with logged_in(server, "alice") as alice:
        reply = alice.get(RECORDS, params={"filter": "text"})
        assert_error(reply, 400, "bad_request")
        (shown,) = blocks("docs/api.md", "json", section="Filters")
        assert reply.json() == json.loads(shown)  # as docs/api.md shows it
        for expression, position in [
            ("text ~ 'a' &&", 13),
            ("author = 'abc'", 9),
            ("created_at > 'soon'", 13),
            ("nope = 1", 0),
            ("(" * 40 + "text = 'a'" + ")" * 40, 16),
        ]:
            error = alice.get(RECORDS, params={"filter": expression}).json()["error"]
            assert (error["code"], error["reason"]) == ("bad_request", "filter"), expression
            assert error["position"] == position, (expression, error)
            assert f"position {position}" in error["message"]
        named = alice.get(RECORDS, params={"filter": "author = 'abc'"}).json()["error"]
        assert "'author'" in named["message"]


@both_databases
def test_hidden_fields_are_refused_as_unknown_ones(server: LiveServer) -> None:
    users = "/api/collections/users/records"
    with logged_in(server, "root") as root:
        assert root.get(users, params={"filter": "username = 'bob'"}).json()["total_items"] == 1
        hidden = root.get(users, params={"filter": "password_hash ~ 'a'"}).json()["error"]
        unknown = root.get(users, params={"filter": "password_hasj ~ 'a'"}).json()["error"]
        assert hidden["message"].replace("hash", "hasj") == unknown["message"]
        assert hidden["position"] == 0 and hidden["reason"] == "filter"
        assert_error(root.get(users, params={"sort": "password_hash"}), 400, "bad_request")
        assert_error(root.get(users, params={"sort": "-password_hash"}), 400, "bad_request")
    assert User.select().count() == 3
