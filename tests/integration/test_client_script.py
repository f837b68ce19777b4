"""The JavaScript client's URL (and the htmx pages' script's): versioned by content,
cached for good under it, checked back under any other."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest
from quart import render_template_string

from runtime.realtime.endpoints import http as endpoints
from tests.support import TIMEOUT, LiveServer


async def test_the_versioned_url_is_cached_for_a_year_and_others_revalidate(
    server: LiveServer,
) -> None:
    async with server.app.test_request_context("/"):
        url = await render_template_string("{{ realtime_client_url() }}")
        tag = await render_template_string("{{ realtime_client_script() }}")
    assert url.startswith("/realtime/client.js?v=") and len(url.split("v=")[1]) == 16
    assert tag == f'<script type="module" src="{url.replace("&", "&amp;")}"></script>'
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        versioned = await http.get(url)
        assert versioned.status_code == 200
        assert versioned.headers["content-type"].startswith("text/javascript")
        cache = {part.strip() for part in versioned.headers["cache-control"].split(",")}
        assert cache == {"public", "max-age=31536000", "immutable"}
        assert "export class RealtimeClient" in versioned.text

        for other in ("/realtime/client.js", "/realtime/client.js?v=0123456789abcdef"):
            plain = await http.get(other)
            assert plain.text == versioned.text
            assert plain.headers["cache-control"] == "no-cache"
            again = await http.get(other, headers={"If-None-Match": plain.headers["etag"]})
            assert again.status_code == 304


def test_the_version_follows_the_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(endpoints._STATIC / "realtime-client.js", tmp_path / "realtime-client.js")
    monkeypatch.setattr(endpoints, "_STATIC", tmp_path)
    first = endpoints.client_version()
    assert endpoints.client_version() == first
    script = tmp_path / "realtime-client.js"
    script.write_text(script.read_text() + "\n// changed\n")
    stat = script.stat()
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new mtime
    assert endpoints.client_version() != first


async def test_htmx_is_served_with_the_runtime_for_good(server: LiveServer) -> None:
    async with server.app.test_request_context("/"):
        tags = await render_template_string("{{ realtime_htmx_scripts() }}")
    *urls, status_url = re.findall(r'<script src="([^"]+)"></script>', tags)
    assert urls == [f"/realtime/vendor/{name}" for name in endpoints.HTMX]
    # Then the runtime's own script for htmx pages, versioned by its content.
    assert re.fullmatch(r"/realtime/htmx\.js\?v=[0-9a-f]{16}", status_url), status_url
    files = [endpoints._STATIC / "vendor" / name for name in endpoints.HTMX]
    files.append(endpoints._STATIC / "realtime-htmx.js")
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        for url, path in zip([*urls, status_url], files, strict=True):
            response = await http.get(url)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/javascript")
            cache = {part.strip() for part in response.headers["cache-control"].split(",")}
            assert cache == {"public", "max-age=31536000", "immutable"}
            assert response.content == path.read_bytes()
        for other in ("/realtime/htmx.js", "/realtime/htmx.js?v=0123456789abcdef"):
            plain = await http.get(other)
            assert plain.content == files[-1].read_bytes()
            assert plain.headers["cache-control"] == "no-cache"
        for other in ("README.md", "htmx-LICENSE.txt", "..%2Fclient.js", "nope.js"):
            missing = await http.get(f"/realtime/vendor/{other}")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "not_found"
