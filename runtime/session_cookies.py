"""The session cookie: Quart's signed cookie, its signature checked once per value.

Every request reads the cookie, and Quart checks its signature anew each time (a new
`URLSafeTimedSerializer`, HMACs, base64, JSON): about 0.1 ms of a 2 ms write. A client
sends the same value with every request (it is set at login only), so a value whose
signature was good is remembered with the time it was signed and its data as JSON; a
later request with the same value is checked for age alone (what the signature check
also does: `PERMANENT_SESSION_LIFETIME`) and gets a session of its own, parsed from that
JSON. The secret keys are part of what is remembered: a new key checks every value anew.

Bounded: at most `VERIFIED_MAX` values are remembered, the oldest forgotten first, and
a value longer than a browser keeps a cookie is never remembered.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature
from quart.sessions import SecureCookieSession, SecureCookieSessionInterface

if TYPE_CHECKING:
    from quart import Quart
    from quart.wrappers import BaseRequestWebsocket

__all__ = ["VERIFIED_MAX", "SessionCookies"]

VERIFIED_MAX = 10_000  # cookie values remembered as verified
COOKIE_MAX = 4096  # bytes a browser keeps of one cookie


class SessionCookies(SecureCookieSessionInterface):
    def __init__(self) -> None:
        # (secret keys, cookie value) -> (its data as JSON, when it was signed)
        self._verified: dict[tuple[Any, str], tuple[str, int]] = {}

    async def open_session(
        self, app: Quart, request: BaseRequestWebsocket
    ) -> SecureCookieSession | None:
        if not app.secret_key:
            return None
        cookie = request.cookies.get(self.get_cookie_name(app))
        if cookie is None:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        key = ((app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ())), cookie)
        known = self._verified.get(key)
        if known is not None:
            payload, signed_at = known
            if _fresh(signed_at, max_age):
                return self.session_class(self.serializer.loads(payload))
            del self._verified[key]
            return self.session_class()
        signer = self.get_signing_serializer(app)
        assert signer is not None  # the app has a secret key
        try:
            data, signed = signer.loads(cookie, max_age=max_age, return_timestamp=True)
        except BadSignature:  # tampered, signed with another key, or too old
            return self.session_class()
        if len(cookie) <= COOKIE_MAX:
            self._remember(key, self.serializer.dumps(data), int(signed.timestamp()))
        return self.session_class(data)

    def _remember(self, key: tuple[Any, str], payload: str, signed_at: int) -> None:
        verified = self._verified
        if len(verified) >= VERIFIED_MAX:
            del verified[next(iter(verified))]
        verified[key] = (payload, signed_at)


def _fresh(signed_at: int, max_age: int) -> bool:
    """The age check of itsdangerous' TimestampSigner: whole seconds, never negative."""
    age = int(time.time()) - signed_at
    return 0 <= age <= max_age
