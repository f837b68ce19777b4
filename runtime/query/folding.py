"""Case folding for `~` and `!~`, one table for SQLite, PostgreSQL and Python.

The databases cannot be trusted to agree with Python: SQLite's `lower()` and `LIKE`
fold ASCII only, PostgreSQL's `lower()` and `ILIKE` follow the server's locale (ASCII
only under "C", more under ICU or a glibc locale, each at its own Unicode version). So
the fold is ours: each character whose case folding (else lower case) is one other
character maps to it ('É' → 'é', final sigma → sigma, the Kelvin sign → 'k'); one that
folds to several ('ß' → 'ss', 'İ') is kept as it is. Python applies it with
`str.translate`, PostgreSQL with `translate(text, FROM, TO)` given the same two
strings, SQLite with `fold` registered as the function `runtime_fold` (runtime/db.py).
"""

from __future__ import annotations

import functools

__all__ = ["SQLITE_FUNCTION", "fold", "fold_strings"]

SQLITE_FUNCTION = "runtime_fold"
_LAST_CASED = 0x1FFFF  # every character with a case sits below (Adlam ends at 0x1E95F)


@functools.cache
def _table() -> dict[int, int]:
    table: dict[int, int] = {}
    for code in range(_LAST_CASED + 1):
        char = chr(code)
        for folded in (char.casefold(), char.lower()):
            if len(folded) == 1:
                if folded != char:
                    table[code] = ord(folded)
                break
    return table


def fold(text: str | None) -> str | None:
    """`text` with every character folded on its own (None stays None, as SQL's NULL)."""
    return None if text is None else text.translate(_table())


@functools.cache
def fold_strings() -> tuple[str, str]:
    """PostgreSQL's `translate()` arguments: the characters folded, and what they become."""
    table = _table()
    return "".join(map(chr, table)), "".join(map(chr, table.values()))
