"""Password hashes: werkzeug's scrypt, computed off the event loop in async code.

One hash costs tens of milliseconds of CPU and 32 MiB; on the event loop it would stall
every connection of the process (a few logins raised everyone's ping from 1 ms to
200 ms). The async functions run it in a small pool of its own, which also bounds the
memory a flood of logins can take. Only the hash runs there: database queries stay
on the caller's thread, where Peewee keeps its connection.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from werkzeug.security import check_password_hash, generate_password_hash

__all__ = ["hash_password", "hash_password_async", "verify_password", "verify_password_async"]

_HASHING = ThreadPoolExecutor(
    max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="password-hash"
)


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    return check_password_hash(stored_hash, password)


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


async def verify_password_async(stored_hash: str, password: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_HASHING, verify_password, stored_hash, password)
