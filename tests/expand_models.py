"""Collections whose foreign keys tests expand: tasks point at their author (a user),
a project only its owner reads, a reviewer hidden from everyone, and a parent task
that visitors do not see (`visible_fields`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import peewee

from runtime import BaseModel
from runtime.users import User

__all__ = ["TASKS", "Project", "Queries", "Task", "logged_queries"]

TASKS = "/api/collections/test_expand_tasks/records"


class Project(BaseModel):
    name = peewee.CharField()
    owner = peewee.ForeignKeyField(User)
    secret = peewee.CharField(default="s3cret")
    read_rule = "owner"
    owner_field = "owner"
    hidden = ("secret",)

    class Meta:
        table_name = "test_expand_projects"


class Task(BaseModel):
    title = peewee.CharField()
    author = peewee.ForeignKeyField(User)
    project = peewee.ForeignKeyField(Project, null=True)
    reviewer = peewee.ForeignKeyField(User, null=True)  # hidden from everyone
    parent = peewee.ForeignKeyField("self", null=True)  # seen by users only
    read_rule = "public"
    write_rule = "authenticated"
    hidden = ("reviewer",)

    class Meta:
        table_name = "test_expand_tasks"

    @classmethod
    def visible_fields(cls, user: Any) -> tuple[str, ...]:
        fields = super().visible_fields(user)
        return fields if user is not None else tuple(f for f in fields if f != "parent")


class Queries(logging.Handler):
    """The SQL Peewee runs (it logs each statement at DEBUG)."""

    def __init__(self) -> None:
        super().__init__()
        self.sql: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, tuple):
            self.sql.append(str(record.msg[0]))


@contextlib.contextmanager
def logged_queries() -> Iterator[Queries]:
    logger, handler = logging.getLogger("peewee"), Queries()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
