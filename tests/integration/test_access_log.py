"""A request cannot write a line of its own into the access log."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest

from runtime.access_log import escape_log_text, stream_opened
from tests.access_log import Capture
from tests.support import TIMEOUT, LiveServer

FORGED = 'FORGED INFO runtime.access: 10.0.0.1 "GET /admin HTTP/1.1" 200 2 1us'


@pytest.mark.parametrize(
    "sent, logged",
    [
        ("%0a", "\\n"),
        ("%0d", "\\r"),
        ("%0d%0a", "\\r\\n"),
        ("%1b[2J", "\\x1b[2J"),  # a terminal escape that would clear the screen
        ("%e2%80%a8", "\\u2028"),  # LINE SEPARATOR: a newline to some log viewers
        ("%c2%85", "\\x85"),  # NEXT LINE
        ("%22", '\\"'),  # would close the quoted request field early
        ("%5c", "\\\\"),
    ],
)
def test_a_request_is_one_line_in_the_access_log(
    server: LiveServer, access_log: Capture, sent: str, logged: str
) -> None:
    path = f"/x{sent}{quote(FORGED)}"
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert c.get(path).status_code == 404
    (record,) = access_log.wait_for("FORGED")
    line = access_log.format(record)
    assert line.count("\n") == 0 and "\r" not in line and "\x1b" not in line
    assert "\u2028" not in line and "\x85" not in line
    assert f'"GET /x{logged}FORGED INFO runtime.access: 10.0.0.1 \\"GET /admin' in line
    assert re.search(r'\.1" 404 \S+ \d+us$', line), line  # the real status ends the line


def test_plain_requests_are_logged_as_they_are(server: LiveServer, access_log: Capture) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        c.get("/messages/caf%C3%A9-plain")
    (record,) = access_log.wait_for("plain")
    assert '"GET /messages/café-plain 1.1" 404 ' in record.getMessage()


def test_escape_log_text() -> None:
    assert escape_log_text("plain /path?q=1 é 日本") == "plain /path?q=1 é 日本"
    assert (
        escape_log_text('a\nb\r\tc"d\\e\x00\x7f\u200b') == 'a\\nb\\r\\tc\\"d\\\\e\\x00\\x7f\\u200b'
    )


async def test_an_sse_stream_is_logged_when_it_opens_and_with_its_status_at_its_end(
    server: LiveServer, access_log: Capture
) -> None:
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http,
        http.stream(
            "GET", "/realtime/subscribe?pattern=messages", headers={"Accept": "text/event-stream"}
        ) as stream,
    ):
        assert stream.status_code == 200
        # Logged while the stream is open (Hypercorn logs a request once it ends).
        (opened,) = access_log.wait_for("stream opened")
        assert re.fullmatch(
            r'127\.0\.0\.1:\d+ "GET /realtime/subscribe 1\.1" 200 stream opened',
            opened.getMessage(),
        )
    # The client went away: its line has the stream's status, not "- -".
    (closed,) = access_log.wait_for('"GET /realtime/subscribe 1.1" 200 - ')
    assert re.search(r'"GET /realtime/subscribe 1\.1" 200 - \d+us$', closed.getMessage())


def test_the_stream_opened_line_is_escaped(access_log: Capture) -> None:
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/realtime/subscribe\n{FORGED}",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 5000),
    }
    stream_opened(scope, 200, [])
    (record,) = access_log.wait_for("stream opened")
    line = access_log.format(record)
    assert line.count("\n") == 0
    assert '"GET /realtime/subscribe\\nFORGED INFO runtime.access: 10.0.0.1 \\"GET' in line
