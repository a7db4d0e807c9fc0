"""Caller sessions: a keypad's proof that it speaks for one caller on one channel.

A session is minted by the relay (``POST /session``) and is a signed, expiring string
``CALLER.EXPIRY.MAC``: the caller's pseudonym, the expiry in Unix seconds and an
HMAC-SHA256 over channel, caller and expiry under the installation's session key, so
any relay holding that key can check it without keeping state, and nobody can forge
another caller's or another channel's. Time is passed in; nothing here does I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from .contract.events import is_caller_id
from .contract.privacy import random_pseudonym

MAC_BYTES: Final = 16
SESSION_MAX: Final = 128  # characters: anything longer is not one of ours
# An expired session may still be renewed for the same caller for this long, so a
# phone left in a pocket overnight keeps its name but not its right to play.
RENEW_GRACE_S: Final = 24 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    caller: str
    channel: str
    expires: int  # Unix seconds
    token: str


class SessionError(Exception):
    """A session that does not hold: `code` names why (bad_session, session_expired)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Sessions:
    """Mints and checks caller sessions under one key."""

    def __init__(self, key: bytes, ttl_s: float) -> None:
        if not key:
            raise ValueError("a session key is needed")
        self._key = key
        self.ttl_s = ttl_s

    def _mac(self, channel: str, caller: str, expires: int) -> str:
        msg = f"{channel}\n{caller}\n{expires}".encode()
        digest = hmac.new(self._key, msg, hashlib.sha256).digest()[:MAC_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def mint(self, channel: str, now: float, caller: str | None = None) -> Session:
        """A new session for `caller` (a fresh pseudonym when None) on `channel`."""
        caller = caller or random_pseudonym()
        expires = int(now + self.ttl_s)
        token = f"{caller}.{expires}.{self._mac(channel, caller, expires)}"
        return Session(caller, channel, expires, token)

    def check(self, token: object, channel: str, now: float, grace_s: float = 0.0) -> Session:
        """The session `token` proves on `channel`, or `SessionError`. Never raises
        anything else, whatever `token` is."""
        if not isinstance(token, str) or not 0 < len(token) <= SESSION_MAX:
            raise SessionError("bad_session", "not a caller session; ask /session for one")
        caller, _, rest = token.partition(".")
        expires_text, _, mac = rest.partition(".")
        if not is_caller_id(caller) or not expires_text.isdigit() or len(expires_text) > 12:
            raise SessionError("bad_session", "not a caller session; ask /session for one")
        expires = int(expires_text)
        if not hmac.compare_digest(mac.encode(), self._mac(channel, caller, expires).encode()):
            raise SessionError(
                "bad_session", f"this caller session is not valid for channel {channel}"
            )
        if now > expires + grace_s:
            raise SessionError("session_expired", "the caller session has expired; renew it")
        return Session(caller, channel, expires, token)

    def renew(self, token: object, channel: str, now: float) -> Session:
        """A fresh session for the caller of `token`, valid or recently expired."""
        old = self.check(token, channel, now, grace_s=RENEW_GRACE_S)
        return self.mint(channel, now, old.caller)


def derive_key(secret: str, label: str) -> bytes:
    """A key for one purpose from an installation's secret (HMAC as a KDF, RFC 5869's
    extract step): the session key and the relay's pseudonym key never coincide."""
    return hmac.new(secret.encode(), f"dialjam {label}".encode(), hashlib.sha256).digest()
