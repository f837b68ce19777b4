"""Client mistakes are 400 or 404 JSON errors, never a 500: query parameters, record ids
and values of every field type, over a real server."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import peewee
import pytest

from runtime import BaseModel
from tests.conftest import PASSWORD
from tests.support import TIMEOUT, LiveServer, assert_error

RECORDS = "/api/collections/messages/records"
KINDS = "/api/collections/test_kinds/records"


class Kinds(BaseModel):
    """One field of each type the API coerces."""

    whole = peewee.IntegerField(null=True)
    big = peewee.BigIntegerField(null=True)
    real = peewee.FloatField(null=True)
    money = peewee.DecimalField(null=True, max_digits=10, decimal_places=2)
    uid = peewee.UUIDField(null=True)
    at = peewee.TimeField(null=True)
    when = peewee.DateTimeField(null=True)
    day = peewee.DateField(null=True)
    name = peewee.CharField(null=True, max_length=20)
    text = peewee.TextField(null=True)
    blob = peewee.BlobField(null=True)
    ip = peewee.IPField(null=True)
    flag = peewee.BooleanField(null=True)

    read_rule = "public"
    write_rule = "authenticated"

    class Meta:
        table_name = "test_kinds"


@pytest.fixture
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert c.post("/auth/login", json={"username": "alice", "password": PASSWORD}).is_success
        yield c


def post_json(c: httpx.Client, url: str, body: str) -> httpx.Response:
    """Raw JSON text: the escapes under test must reach the server as written."""
    return c.post(url, content=body.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("name", ["page", "per_page"])
def test_paging_parameters_take_ascii_whole_numbers_only(alice: httpx.Client, name: str) -> None:
    for value in ["²", "٣", "1²", "-1", "+1", " 1", "1 ", "1e3", "0x10", "1_0", "\x00", "9" * 40]:
        assert_error(alice.get(RECORDS, params={name: value}), 400, "bad_request")


def test_sort_takes_one_visible_field_and_an_optional_minus(alice: httpx.Client) -> None:
    for sort in ["-", "--id", "id-", "\x00", "-\x00", "text\n", "password"]:
        assert_error(alice.get(RECORDS, params={"sort": sort}), 400, "bad_request")


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_record_ids_past_64_bits_are_not_found(alice: httpx.Client, method: str) -> None:
    ids = ["9223372036854775808", "-9223372036854775809", "9" * 20, "1" * 400, "²", "1.0"]
    for record_id in ids:
        response = alice.request(method, f"{RECORDS}/{record_id}", json={"text": "x"})
        assert_error(response, 404, "not_found")


def test_the_largest_64_bit_id_is_just_not_found(alice: httpx.Client) -> None:
    assert_error(alice.get(f"{RECORDS}/9223372036854775807"), 404, "not_found")
    assert_error(alice.get(f"{RECORDS}/-9223372036854775808"), 404, "not_found")


def test_lone_surrogates_are_refused(alice: httpx.Client) -> None:
    for body in [
        '{"text": "\\ud800"}',
        '{"text": "ok \\udfff"}',
        '{"text": "\\udc00\\ud800"}',  # reversed pair: still not text
        '{"\\ud800": "key"}',
        '{"text": "ok", "extra": [[{"deep": "\\ud83d"}]]}',
    ]:
        assert_error(post_json(alice, RECORDS, body), 400, "bad_request")
    assert alice.get(RECORDS).json()["total_items"] == 0


def test_a_real_surrogate_pair_is_text(alice: httpx.Client) -> None:
    created = post_json(alice, RECORDS, '{"text": "\\ud83d\\ude00"}')
    assert created.status_code == 201 and created.json()["text"] == "\N{GRINNING FACE}"


def test_login_with_a_lone_surrogate_is_a_400(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        response = post_json(c, "/auth/login", '{"username": "\\ud800", "password": "x"}')
        assert_error(response, 400, "bad_request")


UNSTORABLE = [
    '{"whole": 9223372036854775808}',
    '{"whole": -9223372036854775809}',
    '{"whole": 1e400}',
    '{"whole": 1.5}',
    '{"whole": true}',
    '{"big": "1"}',
    '{"real": 1e400}',
    '{"real": -1e400}',
    '{"real": 1' + "0" * 400 + "}",
    '{"real": "1.5"}',
    '{"money": 1e400}',
    '{"money": 1' + "0" * 400 + "}",
    '{"money": 100000000}',
    '{"money": "lots"}',
    '{"uid": "not-a-uuid"}',
    '{"uid": 5}',
    '{"at": "25:00"}',
    '{"at": 5}',
    '{"when": "9999-12-31T23:59:59+99:00"}',
    '{"when": 0}',
    '{"day": "2020-02-30"}',
    '{"name": "' + "x" * 21 + '"}',
    '{"name": 5}',
    '{"text": {"a": 1}}',
    '{"blob": "not base64!"}',
    '{"blob": 5}',
    '{"ip": "300.1.1.1"}',
    '{"ip": 5}',
    '{"flag": 1}',
    '{"whole": ' + "9" * 5000 + "}",  # past Python's digit limit for int()
]


def test_every_field_type_refuses_what_it_cannot_store(alice: httpx.Client) -> None:
    for body in UNSTORABLE:
        assert_error(post_json(alice, KINDS, body), 400, "bad_request")
    assert alice.get(KINDS).json()["total_items"] == 0


def test_every_field_type_stores_what_it_can(alice: httpx.Client) -> None:
    sent = {
        "whole": -(2**63),
        "big": 2**63 - 1,
        "real": 1e308,
        "money": 12.5,
        "uid": "12345678-1234-5678-1234-567812345678",
        "at": "12:30:00",
        "when": "2020-01-02T03:04:05",
        "day": "2020-01-02",
        "name": "plain \x00 text",
        "text": "\N{GRINNING FACE}",
        "blob": base64.b64encode(b"\x00\xff").decode(),
        "ip": "192.0.2.1",
        "flag": False,
    }
    created = alice.post(KINDS, json=sent)
    assert created.status_code == 201, created.text
    record = alice.get(f"{KINDS}/{created.json()['id']}").json()
    assert record == {"id": created.json()["id"], **sent, "money": "12.5"}


def test_updates_are_checked_like_creates(alice: httpx.Client) -> None:
    url = f"{KINDS}/{alice.post(KINDS, json={'whole': 1}).json()['id']}"
    assert_error(post_json(alice, url, "{}"), 405, "method_not_allowed")
    for body in ('{"whole": 9223372036854775808}', '{"real": 1e999}', '{"text": "\\ud800"}'):
        response = alice.patch(url, content=body, headers={"content-type": "application/json"})
        assert_error(response, 400, "bad_request")
    assert alice.get(url).json()["whole"] == 1
