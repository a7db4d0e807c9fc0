"""The caller the ARI gateway's tests dial, and the events the gateway should publish
for them (the contract's join, digit and leave, with ``source`` "ari")."""

from __future__ import annotations

from typing import Any

from relay.contract.privacy import pseudonym

NUMBER = "+14155550112"
DIGITS = "14155550112"
KEY = "test-pseudonym-key"
USER = "dialjam"
PASSWORD = "s3cret-ari-password"
CALLER = pseudonym(DIGITS, KEY.encode())


def joined(caller: str = CALLER, display: str | None = "…12") -> dict[str, Any]:
    return {"event": "join", "caller": caller, "source": "ari", "display": display, "nick": None}


def digit(key: str, caller: str = CALLER) -> dict[str, Any]:
    return {"event": "digit", "caller": caller, "digit": key, "source": "ari"}


def left(caller: str = CALLER) -> dict[str, Any]:
    return {"event": "leave", "caller": caller, "reason": "hangup"}
