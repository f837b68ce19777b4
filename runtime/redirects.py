"""Where a page may send the browser after a login: back to this site, nowhere else."""

from __future__ import annotations

import re

__all__ = ["same_site_path"]

# A path on this host, optionally with a query and fragment, in plain URL characters.
# Browsers read "\" as "/" and drop tabs and newlines, so "/\evil", "/\t/evil" and "//evil"
# all lead to another host: only printable ASCII without backslash or space is
# accepted, and the second character may not start an authority.
_SAME_SITE_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@/?#%]*")
_MAX_LENGTH = 2048


def same_site_path(value: object) -> str | None:
    """`value` if it is a relative path on this site that no browser reads otherwise."""
    if isinstance(value, str) and len(value) <= _MAX_LENGTH and _SAME_SITE_PATH.fullmatch(value):
        return value
    return None
