"""Database URLs (`[database] url`): checked before anything connects, and told without
their password.

Only PostgreSQL is named by URL; SQLite, the default, is a file (`[database] path`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["is_database_url", "postgresql_url", "redacted"]

_SCHEMES = ("postgresql", "postgres")  # libpq takes both; Peewee only the first
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)
_EXPECTED = "a URL like postgresql://user:password@host:5432/dbname"


def is_database_url(target: str) -> bool:
    """Whether `target` is a URL rather than an SQLite path."""
    return "://" in target


def postgresql_url(url: str) -> str:
    """`url` as Peewee hands it to psycopg (`postgresql://…`).

    A malformed URL is a `ValueError` whose message never repeats the password.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        raise ValueError(f"expected {_EXPECTED}; got {redacted(url)!r}") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise ValueError(f"expected {_EXPECTED} (SQLite is database.path); got {redacted(url)!r}")
    if not parts.path.strip("/"):
        raise ValueError(f"no database name in {redacted(url)!r}; expected {_EXPECTED}")
    return "postgresql" + url[len(parts.scheme) :]


def redacted(url: str) -> str:
    """`url` without its password (`***` instead), for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    credentials, at, host = netloc.rpartition("@")
    if at and ":" in credentials:
        netloc = f"{credentials.partition(':')[0]}:***@{host}"
    # libpq also takes the password as a query parameter
    tail = _QUERY_PASSWORD.sub(r"\1***", tail)
    return f"{scheme}://{netloc}{slash}{tail}"
