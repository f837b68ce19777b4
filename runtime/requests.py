"""Requests: which methods do not write (HTTP's safe methods), and reading bodies
safely: JSON objects (and forms where allowed), never a crash."""

from __future__ import annotations

import json
import math
from typing import Any

from quart import request

from .errors import BadRequest
from .json_values import holds_lone_surrogates

__all__ = ["SAFE_METHODS", "parse_json_object", "read_body"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _OutOfRange(ValueError):
    pass


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400 parses as infinity, which JSON cannot carry
        raise _OutOfRange(text)
    return number


def parse_json_object(raw: bytes | str) -> dict[str, Any]:
    """A JSON object from `raw`, or BadRequest; survives any input."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except _OutOfRange:
        raise BadRequest("A number in the body is too large.") from None
    except (ValueError, RecursionError):  # RecursionError: deeply nested input
        raise BadRequest("The body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise BadRequest("The body must be a JSON object.")
    # Any key or string: broken UTF-16 that no database can store and no wire carry.
    if holds_lone_surrogates(value):
        raise BadRequest("The body holds a lone surrogate escape (like \\ud800): not text.")
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
