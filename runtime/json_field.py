"""A field that holds a JSON value (objects, arrays, text, numbers, booleans), the same on
SQLite and PostgreSQL: kept as JSON text in a TEXT column, given to Python, the API and
events as the structured value (a dict or list, never a string to parse again).

    from runtime.json_field import JSONField

    class Poll(BaseModel):
        options = JSONField(default=list)

Through the API a client sends the value itself (`"options": [{"label": "Tea"}]`);
`runtime.fields` checks it (nested at most 100 levels, text UTF-8 can carry).
"""

from __future__ import annotations

import json
from typing import Any

import peewee

__all__ = ["JSONField"]


class JSONField(peewee.TextField):
    """A JSON value, stored as compact JSON text. Querying inside it is the database's
    business (SQLite's `json_extract`, PostgreSQL's `::jsonb`); equality filters of
    subscriptions compare top-level scalars only, so they never match it."""

    def db_value(self, value: Any) -> Any:
        if value is None:
            return None
        # allow_nan=False: NaN is no JSON; the API refuses it before it gets here.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def python_value(self, value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        return json.loads(value)
