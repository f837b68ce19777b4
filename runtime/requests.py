"""Reading request bodies safely: JSON objects (and forms where allowed), never a crash."""

from __future__ import annotations

import json
from typing import Any

from quart import request

from .errors import BadRequest

__all__ = ["parse_json_object", "read_body"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(raw: bytes | str) -> dict[str, Any]:
    """A JSON object from `raw`, or BadRequest; survives any input."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # RecursionError: deeply nested input
        raise BadRequest("The body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise BadRequest("The body must be a JSON object.")
    return value


async def read_body(*, allow_form: bool = False) -> dict[str, Any]:
    """The request body as a dict: JSON always, form fields when `allow_form`."""
    mimetype = request.mimetype
    if allow_form and mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form
        return {key: form.get(key) for key in form}
    if mimetype != "application/json":
        raise BadRequest("The body must be JSON (Content-Type: application/json).")
    return parse_json_object(await request.get_data(as_text=False))
