"""Foreign keys through the records API, over a real server, on SQLite and PostgreSQL: a
bad value is a 400 naming the foreign key; a missing target, or deleting a record
others still point at, is a 409 `conflict` with a `reason`; never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import peewee
import pytest

from runtime import BaseModel
from tests.conftest import PASSWORD
from tests.databases import both_databases
from tests.support import TIMEOUT, LiveServer, assert_error

BOXES = "/api/collections/test_boxes/records"
ITEMS = "/api/collections/test_items/records"


class Box(BaseModel):
    name = peewee.CharField(null=True)
    read_rule = "public"
    write_rule = "authenticated"

    class Meta:
        table_name = "test_boxes"


class Item(BaseModel):
    box = peewee.ForeignKeyField(Box)
    label = peewee.CharField()
    read_rule = "public"
    write_rule = "authenticated"

    class Meta:
        table_name = "test_items"


@pytest.fixture
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert c.post("/auth/login", json={"username": "alice", "password": PASSWORD}).is_success
        yield c


def created(response: httpx.Response) -> int:
    assert response.status_code == 201, response.text
    record_id: int = response.json()["id"]
    return record_id


@both_databases
def test_deleting_a_referenced_record_is_a_conflict(alice: httpx.Client) -> None:
    box = created(alice.post(BOXES, json={"name": "b"}))
    item = created(alice.post(ITEMS, json={"box": box, "label": "x"}))
    error = assert_error(alice.delete(f"{BOXES}/{box}"), 409, "conflict")
    assert error["reason"] == "referenced"
    assert alice.get(f"{BOXES}/{box}").status_code == 200  # nothing was deleted
    assert alice.delete(f"{ITEMS}/{item}").status_code == 204
    assert alice.delete(f"{BOXES}/{box}").status_code == 204  # no longer referenced


@both_databases
def test_creating_with_a_missing_target_is_a_conflict_naming_the_field(
    alice: httpx.Client,
) -> None:
    response = alice.post(ITEMS, json={"box": 99, "label": "x"})
    assert_error(response, 409, "conflict")
    assert response.json() == {  # as docs/api.md shows it
        "error": {
            "code": "conflict",
            "message": "Field 'box' names a record that does not exist.",
            "reason": "missing_reference",
            "field": "box",
        }
    }
    assert alice.get(ITEMS).json()["total_items"] == 0


@both_databases
def test_updating_to_a_missing_target_is_a_conflict_naming_the_field(
    alice: httpx.Client,
) -> None:
    box = created(alice.post(BOXES, json={}))
    item = created(alice.post(ITEMS, json={"box": box, "label": "x"}))
    error = assert_error(alice.patch(f"{ITEMS}/{item}", json={"box": 99}), 409, "conflict")
    assert (error["reason"], error["field"]) == ("missing_reference", "box")
    assert alice.get(f"{ITEMS}/{item}").json()["box"] == box  # unchanged
    # The connection is usable after the failed write (PostgreSQL aborts a transaction).
    other = created(alice.post(BOXES, json={}))
    assert alice.patch(f"{ITEMS}/{item}", json={"box": other}).json()["box"] == other


@both_databases
@pytest.mark.parametrize("value", [2**31, 2**40, 2**63 - 1, -(2**63)])
def test_an_id_no_record_can_have_is_a_missing_reference(alice: httpx.Client, value: int) -> None:
    """On PostgreSQL the key column is 32 bits: past that, the same 409 as on SQLite."""
    box = created(alice.post(BOXES, json={}))
    error = assert_error(alice.post(ITEMS, json={"box": value, "label": "x"}), 409, "conflict")
    assert (error["reason"], error["field"]) == ("missing_reference", "box")
    item = created(alice.post(ITEMS, json={"box": box, "label": "x"}))
    error = assert_error(alice.patch(f"{ITEMS}/{item}", json={"box": value}), 409, "conflict")
    assert (error["reason"], error["field"]) == ("missing_reference", "box")


@both_databases
@pytest.mark.parametrize("value", ["abc", "1", 1.5, True, {}, [], 2**63, -(2**63) - 1])
def test_a_bad_foreign_key_value_is_blamed_on_the_foreign_key(
    alice: httpx.Client, value: object
) -> None:
    box = created(alice.post(BOXES, json={}))
    error = assert_error(alice.post(ITEMS, json={"box": value, "label": "x"}), 400, "bad_request")
    assert "'box'" in error["message"] and "'id'" not in error["message"]
    item = created(alice.post(ITEMS, json={"box": box, "label": "x"}))
    error = assert_error(alice.patch(f"{ITEMS}/{item}", json={"box": value}), 400, "bad_request")
    assert "'box'" in error["message"] and "'id'" not in error["message"]


@both_databases
def test_a_required_foreign_key_cannot_be_left_out_or_null(alice: httpx.Client) -> None:
    box = created(alice.post(BOXES, json={}))
    error = assert_error(alice.post(ITEMS, json={"label": "x"}), 400, "bad_request")
    assert "box" in error["message"]
    error = assert_error(alice.post(ITEMS, json={"box": None, "label": "x"}), 400, "bad_request")
    assert "'box'" in error["message"]
    item = created(alice.post(ITEMS, json={"box": box, "label": "x"}))
    error = assert_error(alice.patch(f"{ITEMS}/{item}", json={"box": None}), 400, "bad_request")
    assert "'box'" in error["message"]
    assert alice.get(ITEMS).json()["total_items"] == 1
