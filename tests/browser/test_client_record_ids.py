"""The JavaScript client routes record events by the event's topic, so a record
subscription works whatever the primary key is called."""

from __future__ import annotations

from collections.abc import Callable

import peewee
from playwright.sync_api import Page

from runtime import BaseModel
from tests.support import LiveServer


class Tag(BaseModel):
    slug = peewee.CharField(primary_key=True)
    title = peewee.CharField()

    read_rule = "public"
    write_rule = "nobody"

    class Meta:
        table_name = "test_browser_tags"


def test_a_record_pattern_on_a_key_not_named_id(
    server: LiveServer, new_page: Callable[..., Page]
) -> None:
    page = new_page()
    page.goto(f"{server.url}/login")
    page.evaluate(
        """async () => {
            const { RealtimeClient } = await import("/realtime/client.js");
            const client = new RealtimeClient();
            window.seen = [];
            const unsubscribe = client.subscribe("test_browser_tags/hello", (event) => {
                window.seen.push(`${event.action}:${event.record.title}`);
            });
            await unsubscribe.ready;
        }"""
    )
    Tag.create(slug="other", title="not this one")
    hello = Tag.create(slug="hello", title="first")
    hello.title = "second"
    hello.save()
    page.wait_for_function("window.seen.length >= 2")
    assert page.evaluate("window.seen") == ["create:first", "update:second"]
