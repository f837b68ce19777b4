"""runtime.json_field.JSONField on SQLite and PostgreSQL: a structure in, the same
structure out (API and Python), compact JSON text in the column, and values that cannot
be kept refused with a 400 naming the field."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from runtime import BaseModel
from runtime.json_field import JSONField
from tests.conftest import PASSWORD
from tests.databases import both_databases
from tests.support import TIMEOUT, LiveServer, assert_error

RECORDS = "/api/collections/test_json_things/records"


class Thing(BaseModel):
    data = JSONField()
    extra = JSONField(null=True)
    read_rule = "public"
    write_rule = "authenticated"

    class Meta:
        table_name = "test_json_things"


@pytest.fixture
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert c.post("/auth/login", json={"username": "alice", "password": PASSWORD}).is_success
        yield c


@both_databases
def test_a_structure_goes_in_and_comes_out_as_itself(alice: httpx.Client) -> None:
    value = {"tags": ["a", "é"], "n": 1.5, "nested": {"ok": True, "none": None}}
    created = alice.post(RECORDS, json={"data": value})
    assert created.status_code == 201, created.text
    thing = created.json()
    assert thing["data"] == value and thing["extra"] is None
    assert alice.get(f"{RECORDS}/{thing['id']}").json()["data"] == value
    assert Thing.get_by_id(thing["id"]).data == value  # Python sees the structure too
    (stored,) = (
        Thing.select(Thing.data.cast("TEXT").coerce(False))
        .where(Thing.id == thing["id"])
        .tuples()[0]
    )
    assert stored == '{"tags":["a","é"],"n":1.5,"nested":{"ok":true,"none":null}}'
    for scalar in ("text", 7, False, []):
        patched = alice.patch(f"{RECORDS}/{thing['id']}", json={"data": scalar})
        assert patched.is_success and patched.json()["data"] == scalar, patched.text


@both_databases
def test_what_cannot_be_kept_is_a_bad_request(alice: httpx.Client) -> None:
    deep: list[object] = []
    for _ in range(120):
        deep = [deep]
    answer = alice.post(RECORDS, json={"data": deep})
    assert_error(answer, 400, "bad_request")
    assert "'data'" in answer.json()["error"]["message"]
    assert_error(alice.post(RECORDS, json={"data": None}), 400, "bad_request")  # not null=True
    assert_error(alice.post(RECORDS, json={}), 400, "bad_request")  # required
    assert Thing.select().count() == 0
