"""Who may publish what, where (the README's "Facing the street: who may do what"), free of I/O.

Everything published on the installation's channel comes from strangers: it is read
by the contract's total reader and fanned out in its canonical shape only, so an
unknown field, a command, a phone number or another caller's id never passes. A
keypad's events carry the caller of its session, whatever the frame says; seed
publishers (the publisher token) and the relay's own gateways speak for any caller;
anonymous clients publish only in the open mode of a rehearsal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import protocol
from .contract.callers import read_callers
from .contract.events import (
    Refused,
    SeedDigit,
    clean_display,
    is_caller_id,
    read_public,
    seed_data,
    to_data,
)
from .contract.privacy import masked
from .protocol import ProtocolError


@dataclass(frozen=True, slots=True)
class Publisher:
    """What a publisher has proved: its roles' tokens, a keypad's caller (its session
    on this channel), and whether the relay is open to anonymous publishers."""

    roles: frozenset[str] = frozenset()
    caller: str | None = None
    open: bool = False


def admit(
    channel: str,
    data: Mapping[str, Any],
    who: Publisher,
    public: frozenset[str],
    pseudonymise: Callable[[str], str],
) -> dict[str, Any]:
    """The `data` to fan out on `channel` for `who`, or `ProtocolError` saying why not.
    `public` names the installation's public channels (joins, digits and leaves)."""
    role = protocol.required_role(channel)
    if role is not None:
        if role not in who.roles:
            raise ProtocolError("unauthorised", f"publishing to {channel} needs the {role} token")
        if channel.endswith(protocol.CALLERS_SUFFIX):
            # What reaches a phone is the contract's shape only: an addressed event
            # names its own caller, the digest nobody.
            news = read_callers(data)
            if isinstance(news, Refused):
                raise ProtocolError(news.code, news.message)
            return news.to_data()
        return dict(data)
    if channel not in public:
        if who.roles or who.open:
            return dict(data)
        raise ProtocolError(
            "unauthorised",
            "publishing needs a token (anonymous publishing is only for --open rehearsals)",
        )
    if who.caller is not None:
        return _from_keypad(data, who.caller)
    if "publisher" not in who.roles and not who.open:
        raise ProtocolError(
            "unauthorised",
            f"publishing to {channel} needs a caller session (the keypad asks POST /session "
            "for one) or the publisher token",
        )
    event = read_public(data, pseudonymise)
    if isinstance(event, Refused):
        raise ProtocolError(event.code, event.message)
    if isinstance(event, SeedDigit):
        if is_caller_id(event.number):  # already a pseudonym: its display is the peer's word
            return seed_data(event.number, event.digit, clean_display(data.get("display")))
        return seed_data(pseudonymise(event.number), event.digit, masked(event.number))
    return to_data(event)


def _from_keypad(data: Mapping[str, Any], caller: str) -> dict[str, Any]:
    """A keypad speaks for its session's caller only, as ``web``, with no number."""
    if data.get("event") is None and "command" in data:
        raise ProtocolError("bad_event", "a keypad sends join, digit or leave events")
    stamped = {**data, "caller": caller, "source": "web", "display": None}
    event = read_public(stamped)
    if isinstance(event, Refused):
        raise ProtocolError(event.code, event.message)
    assert not isinstance(event, SeedDigit)  # a caller id is never read as a number
    return to_data(event)
