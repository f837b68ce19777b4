"""docs/client.md's live-list example, run as written in Chromium against a real server."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page

from runtime.demo import Message
from runtime.users import User
from tests.docs_apps import blocks
from tests.support import LiveServer


def test_the_live_list_example_runs(
    server: LiveServer, users: dict[str, User], new_page: Callable[..., Page]
) -> None:
    (block,) = blocks(
        "docs/client.md", "html", section="A live list: `client.liveList(pattern, options)`"
    )
    markup, script = re.fullmatch(
        r'(.*?)<script type="module">\n(.*)</script>\n', block, flags=re.DOTALL
    ).groups()  # type: ignore[union-attr]
    Message.create(text="first", author=users["alice"])
    page = new_page()
    page.goto(f"{server.url}/login")
    page.evaluate(
        """([markup, script]) => {
            document.body.innerHTML = markup;
            const element = document.createElement("script");
            element.type = "module";
            element.textContent = script;
            document.body.append(element);
        }""",
        [markup, script],
    )
    page.wait_for_function("document.title === '1 messages'")
    Message.create(text="second", author=users["bob"])
    page.wait_for_function("document.title === '2 messages'")
    items = page.locator("#messages > li").all_text_contents()
    assert items == ["alice: first", "bob: second"]  # oldest first, as its compare says
    Message.delete().execute()
    page.wait_for_function("document.title === '0 messages'")
    assert page.locator("#messages > li").all_text_contents() == ["No messages yet."]
