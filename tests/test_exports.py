"""The public API is pinned: changing it is a decision, not an accident."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import runtime
import runtime.app
import runtime.base_model
import runtime.realtime
import runtime.realtime.channels
import runtime.realtime.clients.handlers
import runtime.realtime.endpoints
import runtime.realtime.extension
import runtime.realtime.publishing.publisher
import runtime.validation


def _star_import(module: ModuleType) -> set[str]:
    """The names `from <module> import *` binds."""
    namespace: dict[str, Any] = {}
    exec(f"from {module.__name__} import *", namespace)
    return set(namespace) - {"__builtins__"}


def test_the_runtimes_public_api() -> None:
    assert _star_import(runtime) == {"BaseModel", "Realtime", "ValidationError", "create_app"}
    assert runtime.BaseModel is runtime.base_model.BaseModel
    assert runtime.Realtime is runtime.realtime.extension.Realtime
    assert runtime.create_app is runtime.app.create_app
    assert runtime.ValidationError is runtime.validation.ValidationError


def test_realtimes_face() -> None:
    """What apps use of the realtime wing (tests/test_architecture.py keeps the rest of
    the runtime to it too)."""
    realtime = runtime.realtime
    assert _star_import(realtime) == {
        "BrokerUnavailable",
        "Channel",
        "Realtime",
        "Sender",
        "client_script_response",
    }
    assert realtime.BrokerUnavailable is runtime.realtime.publishing.publisher.BrokerUnavailable
    assert realtime.Realtime is runtime.realtime.extension.Realtime
    assert realtime.Sender is runtime.realtime.clients.handlers.Sender
    assert realtime.Channel is runtime.realtime.channels.Channel
    assert realtime.client_script_response is runtime.realtime.endpoints.client_script_response
