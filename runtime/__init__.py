"""The runtime: a Quart application runtime whose heart is realtime pub/sub."""

from __future__ import annotations

from .app import create_app
from .base_model import BaseModel
from .realtime import Realtime
from .validation import ValidationError

__all__ = ["BaseModel", "Realtime", "ValidationError", "create_app"]
