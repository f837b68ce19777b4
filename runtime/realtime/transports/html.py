"""Server-rendered live pages: record events as HTML fragments, in htmx's SSE form.

    realtime.fragment("messages", "fragments/message.html")

registers, per collection, a Jinja template that renders one record. An SSE stream
opened with `format=html` then carries each record event of such a collection as the
rendered fragment, under an event name that htmx's SSE extension swaps by
(`sse-swap`): `messages:create`, `messages:update:<id>`, `messages:delete:<id>`, and
with `snapshot=1` the current records as `messages:snapshot`. A page made with
`hx-ext="sse"` thus updates with no JavaScript of its own.

A fragment is rendered from the record as that subscriber may see it (the same visible
fields as the JSON event), autoescaped, once per distinct shape: the template gets
`record` (a dict), `record_id`, `collection`, `topic`, `action` and `reason` (for a
record an update brought into the subscriber's view: "filter" or "access"; else None).
It renders outside any request: no `request`, `session` or `url_for` in it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import jinja2
from quart import Quart

from .wire import frame_message, sse_message

__all__ = ["Fragments"]

log = logging.getLogger("runtime.realtime")


class Fragments:
    """The templates of an app's collections, rendered without a request."""

    def __init__(self, app: Quart, templates: Mapping[str, str]) -> None:
        self._app = app
        self._templates = templates  # collection -> template name (read live)
        self._env: jinja2.Environment | None = None

    def _environment(self) -> jinja2.Environment:
        # Quart's own environment renders asynchronously, which the flusher (plain code
        # on the loop) cannot await: a synchronous one over the same templates, filters
        # and tests, made when the first fragment renders (the app is set up by then).
        if self._env is None:
            app_env = self._app.jinja_env
            env = jinja2.Environment(
                loader=app_env.loader, autoescape=True, auto_reload=app_env.auto_reload
            )
            env.filters.update(app_env.filters)
            env.tests.update(app_env.tests)
            self._env = env
        return self._env

    def messages(self, frames: list[str], cache: dict[str, str] | None = None) -> str:
        """The SSE messages of `frames` for an HTML stream (`cache`: per flush)."""
        parts = []
        for frame in frames:
            text = cache.get(frame) if cache is not None else None
            if text is None:
                text = self._message(frame)
                if cache is not None:
                    cache[frame] = text
            parts.append(text)
        return "".join(parts)

    def _message(self, frame: str) -> str:
        try:
            return self._html(frame)
        except Exception:  # the app's template: its stream gets the JSON, the log why
            log.exception("rendering a fragment failed; sent as JSON instead")
            return frame_message(frame)

    def _html(self, frame: str) -> str:
        if frame.startswith(_EVENT):
            event = json.loads(frame)
            collection = event.get("collection")
            if "record" in event and collection in self._templates:
                action, record_id = event["action"], event["topic"].partition("/")[2]
                name = (
                    f"{collection}:create"
                    if action == "create"
                    else (f"{collection}:{action}:{record_id}")
                )
                html = (
                    f"<!-- {event['topic']} deleted -->"
                    if action == "delete"
                    else self._render(
                        collection, event["record"], record_id, action, event.get("reason")
                    )
                )
                return sse_message(html, event=name, id=event["id"])
        elif frame.startswith(_SUBSCRIBED) and '"snapshot":' in frame:
            reply = json.loads(frame)
            collection = reply["pattern"].partition("/")[0]
            snapshot = reply.get("snapshot")
            if snapshot is not None and collection in self._templates:
                html = self._snapshot(collection, snapshot["records"], snapshot["key"])
                snapshot_message = sse_message(html, event=f"{collection}:snapshot")
                return frame_message(frame) + snapshot_message
        return frame_message(frame)

    def _snapshot(self, collection: str, records: list[dict[str, Any]], key: str) -> str:
        return "".join(
            self._render(collection, record, str(record.get(key, "")), "snapshot")
            for record in records
        )

    def _render(
        self, collection: str, record: Any, record_id: str, action: str, reason: str | None = None
    ) -> str:
        template = self._environment().get_template(self._templates[collection])
        return template.render(
            record=record,
            record_id=record_id,
            collection=collection,
            topic=f"{collection}/{record_id}",
            action=action,
            reason=reason,
        )


_EVENT = '{"type":"event",'
_SUBSCRIBED = '{"type":"subscribed",'
