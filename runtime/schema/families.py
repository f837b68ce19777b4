"""Column types by family: what "retyped" means when a table is compared with a model.

SQLite and PostgreSQL spell the same type differently (`VARCHAR(255)`, `character
varying`), and a model's field may be spelled differently again (`SERIAL`): each name
is reduced to its family (text, integer, …), and only a change of family is a retype.
A width (`VARCHAR(100)` to `VARCHAR(200)`) is not.
"""

from __future__ import annotations

import re
from typing import Any

import peewee

__all__ = ["family", "sql_type"]

_FAMILIES = {
    "integer": (
        "int", "integer", "bigint", "smallint", "tinyint", "mediumint", "int2", "int4",
        "int8", "serial", "bigserial", "smallserial",
    ),
    "text": (
        "varchar", "character varying", "char", "character", "text", "clob", "nvarchar",
        "nchar", "citext",
    ),
    "real": ("real", "float", "double", "double precision", "float4", "float8"),
    "numeric": ("decimal", "numeric"),
    "boolean": ("bool", "boolean"),
    "datetime": (
        "datetime", "timestamp", "timestamp without time zone", "timestamp with time zone",
        "timestamptz",
    ),
    "date": ("date",),
    "time": ("time", "time without time zone", "time with time zone"),
    "binary": ("blob", "bytea"),
    "uuid": ("uuid",),
    "json": ("json", "jsonb"),
}  # fmt: skip
_FAMILY_OF = {name: family for family, names in _FAMILIES.items() for name in names}


def family(type_name: str | None) -> str | None:
    """The family of a column type as a database or a field names it; None when it is
    not one we know (then it is never called retyped)."""
    if not type_name:
        return None
    bare = re.sub(r"\(.*?\)", "", type_name).strip().lower()
    return _FAMILY_OF.get(bare)


def sql_type(db: peewee.Database, field: Any) -> str:
    """The column type `field` has on `db` (`VARCHAR(255)`, `INTEGER`, …)."""
    ctx = db.get_sql_context()
    return str(ctx.sql(field.ddl_datatype(ctx)).query()[0])
