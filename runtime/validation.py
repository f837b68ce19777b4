"""Validation: `ValidationError`, which a model's `validate(user)` raises, and the user a
write is made for (the "acting user").

`BaseModel.save()` calls `validate(self, user)` before it touches the database, with
`acting_user()`: the user `acting_as()` names (the records API names the request's user,
client events their sender's), else the logged-in user of the Quart request or
WebSocket being served, else None (a script, a worker, the CLI).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from .errors import BadRequest

__all__ = ["ValidationError", "acting_as", "acting_user"]


class ValidationError(BadRequest):
    """Field-keyed messages saying why a record cannot be saved; a 400 `bad_request`
    with `reason: "invalid"` and `fields: {name: message}` for a client."""

    def __init__(self, fields: Mapping[str, str], message: str | None = None) -> None:
        if not fields or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
        ):
            raise TypeError("ValidationError takes a non-empty mapping of field name to message")
        self.fields = dict(fields)
        names = ", ".join(repr(name) for name in self.fields)
        super().__init__(
            message or f"Invalid fields: {names}.", reason="invalid", fields=self.fields
        )


_NOBODY_SAID = object()  # acting_as() was not used: fall back to the request's user
_acting: ContextVar[Any] = ContextVar("runtime_acting_user", default=_NOBODY_SAID)


@contextlib.contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Writes made inside are made for `user` (None: for a visitor)."""
    token = _acting.set(user)
    try:
        yield
    finally:
        _acting.reset(token)


def acting_user() -> Any:
    """The user writes are made for now (see the module's docstring)."""
    user = _acting.get()
    if user is not _NOBODY_SAID:
        return user
    from quart import current_app, has_request_context, has_websocket_context

    if has_request_context() or has_websocket_context():
        # The runtime's state on the app knows the session's user (runtime.app): auth
        # needs the models, which need this module.
        state = current_app.extensions.get("runtime")
        return state.current_user() if state is not None else None
    return None
