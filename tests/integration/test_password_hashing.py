"""Password hashing runs off the event loop: a burst of logins never stalls the server."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from runtime import passwords
from runtime import users as users_module
from runtime.users import User, acreate_user
from tests.conftest import PASSWORD
from tests.support import TIMEOUT, LiveServer


class Held:
    """Wraps a hash function: records the threads it runs in and holds each call until
    released, so that a test can act while hashes are in progress."""

    def __init__(self, original: Callable[..., Any]) -> None:
        self.original = original
        self.threads: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: Any) -> Any:
        self.threads.append(threading.get_ident())
        self.entered.set()
        self.release.wait(TIMEOUT)
        return self.original(*args)


def logged_in(server: LiveServer, path: str, username: str) -> bool:
    """Log in with the form at `path`; whether that started a session."""
    with httpx.Client(base_url=server.url, timeout=TIMEOUT * 2) as c:
        c.post(path, data={"username": username, "password": PASSWORD})
        return c.get("/auth/me").status_code == 200


@pytest.mark.parametrize("path", ["/auth/login", "/login"])
def test_logins_hash_off_the_loop_and_the_server_keeps_answering(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    loop_thread = server.call(threading.get_ident)
    held = Held(passwords.check_password_hash)
    monkeypatch.setattr(passwords, "check_password_hash", held)
    names = ["alice", "bob", "root", "alice", "nobody"]  # "nobody": the dummy hash
    with ThreadPoolExecutor(len(names)) as pool:
        try:
            logins = [pool.submit(logged_in, server, path, name) for name in names]
            assert held.entered.wait(TIMEOUT)
            # Hashes are in progress and held: if one held the event loop, this
            # request could not be answered until it was released.
            with httpx.Client(base_url=server.url, timeout=TIMEOUT) as other:
                assert other.get("/auth/me").status_code == 401
                assert other.get("/messages").status_code == 200
        finally:
            held.release.set()
        assert [login.result(TIMEOUT * 2) for login in logins] == [True] * 4 + [False]
    assert len(held.threads) == len(names)
    assert loop_thread not in held.threads


async def test_new_passwords_hash_off_the_loop(
    server: LiveServer, users: dict[str, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = server.call(threading.get_ident)
    held = Held(passwords.generate_password_hash)
    held.release.set()
    monkeypatch.setattr(passwords, "generate_password_hash", held)
    carol = await server.run(acreate_user("carol", "carol's password"))
    await server.run(users["alice"].aset_password("a new password"))
    assert len(held.threads) == 2 and loop_thread not in held.threads
    assert carol.check_password("carol's password")
    assert User.get_by_id(users["alice"].id).check_password("a new password")


@pytest.mark.parametrize("name", ["nobody", "alice"])
def test_the_unknown_user_hash_is_made_off_the_loop_at_the_first_login_whoever_logs_in(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """It is what an unknown name is checked against, so that it fails as slowly as a
    wrong password: made at the first login, known name or not, so that the first
    login costs the same either way; off the event loop, as every hash."""
    loop_thread = server.call(threading.get_ident)
    made = Held(passwords.generate_password_hash)
    made.release.set()
    monkeypatch.setattr(passwords, "generate_password_hash", made)
    monkeypatch.setattr(users_module, "_dummy_hash", None)  # as in a process just started
    assert logged_in(server, "/auth/login", name) is (name == "alice")
    assert len(made.threads) == 1 and loop_thread not in made.threads
    assert logged_in(server, "/auth/login", "nobody") is False
    assert len(made.threads) == 1  # made once


def test_importing_the_runtime_hashes_nothing() -> None:
    """A process's start, and every command's, costs no password hash (~0.1 s)."""
    code = (
        "import werkzeug.security as security\n"
        "made = []\n"
        "security.generate_password_hash = lambda *a, **k: made.append(a)\n"
        "import runtime, runtime.app, runtime.users\n"
        "assert made == [], made\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT * 6
    )
    assert done.returncode == 0, done.stderr
