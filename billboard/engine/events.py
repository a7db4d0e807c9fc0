"""The engine's vocabulary: small frozen values in and out.

In: `Join`, `Digit`, `Leave` (from gateways and keypads, already pseudonymised at the
billboard's door) and `Command` (from the console or the billboard's keys).
Out: `NoteOn`/`NoteOff` stamped with the time they must sound, and `Assign`/`Left`
for the callers (published on ``CHANNEL:state``).

`parse_event` reads a relay ``data`` object (DESIGN.md's shapes) into an input event
and never raises: anything it cannot read gives None.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

DIGITS: Final = frozenset("0123456789*#")
# A caller pseudonym as gateways and keypads make them ("c-5f1e09a2b4"); the billboard
# accepts any short token of this alphabet and nothing that could be a phone number.
CALLER_ID: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,39}")
# A keypad nickname: at most 16 letters, digits or spaces (Unicode letters allowed).
NICK_MAX: Final = 16
LEAVE_REASONS: Final = frozenset({"hangup", "timeout", "kicked", "idle", "turn", "closed", "full"})
COMMANDS: Final = frozenset({"kick", "mute", "tempo", "key", "scale", "panic", "pause"})


@dataclass(frozen=True, slots=True)
class Join:
    caller: str
    source: str = "web"
    display: str | None = None  # "…12": at most the last two digits of a number
    nick: str | None = None


@dataclass(frozen=True, slots=True)
class Digit:
    caller: str
    digit: str
    source: str = "web"


@dataclass(frozen=True, slots=True)
class Leave:
    caller: str
    reason: str = "hangup"


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


InputEvent = Join | Digit | Leave | Command


@dataclass(frozen=True, slots=True)
class NoteOn:
    time: float  # when it must sound, on the engine's clock (seconds)
    step: int  # the grid step it belongs to
    track: str
    channel: int  # MIDI channel 0–15 (drums: 9, i.e. channel 10)
    note: int
    velocity: int


@dataclass(frozen=True, slots=True)
class NoteOff:
    time: float
    step: int
    track: str
    channel: int
    note: int


Note = NoteOn | NoteOff


@dataclass(frozen=True, slots=True)
class Assign:
    """A caller's place: a track and colour, or `line` > 0 in the waiting line."""

    caller: str
    track: str | None
    color: str | None
    line: int = 0

    def to_data(self) -> dict[str, Any]:
        return {
            "event": "assign",
            "caller": self.caller,
            "track": self.track,
            "color": self.color,
            "line": self.line,
        }


@dataclass(frozen=True, slots=True)
class Left:
    """A caller freed by the billboard: reason ``idle``, ``turn`` or ``kicked``."""

    caller: str
    reason: str

    def to_data(self) -> dict[str, Any]:
        return {"event": "leave", "caller": self.caller, "reason": self.reason}


CallerUpdate = Assign | Left


def event_to_data(event: InputEvent) -> dict[str, Any]:
    """The relay ``data`` shape of an input event (the inverse of `parse_event`)."""
    if isinstance(event, Join):
        return {
            "event": "join",
            "caller": event.caller,
            "source": event.source,
            "display": event.display,
            "nick": event.nick,
        }
    if isinstance(event, Digit):
        return {
            "event": "digit",
            "caller": event.caller,
            "digit": event.digit,
            "source": event.source,
        }
    if isinstance(event, Leave):
        return {"event": "leave", "caller": event.caller, "reason": event.reason}
    return {"event": "command", "name": event.name, "args": dict(event.args)}


def clean_nick(nick: object) -> str | None:
    """A nickname as the facade may show it: letters, digits and spaces only, at most
    16 characters, or None. Digit runs that could be a phone number are refused."""
    if not isinstance(nick, str):
        return None
    kept = "".join(ch for ch in nick if ch.isalnum() or ch == " ").strip()
    kept = " ".join(kept.split())[:NICK_MAX].strip()
    if not kept:
        return None
    if sum(ch.isdigit() for ch in kept) > 4:  # never a number on the building
        return None
    return kept


def clean_display(display: object) -> str | None:
    """At most the last two digits of a number, as "…12"."""
    if not isinstance(display, str):
        return None
    digits = "".join(ch for ch in display if ch.isdigit())
    return f"…{digits[-2:]}" if digits else None


def parse_event(data: Mapping[str, Any]) -> InputEvent | None:
    """Read one relay ``data`` object (already pseudonymised) into an input event."""
    kind = data.get("event")
    if kind == "command":
        name = data.get("name")
        args = data.get("args", {})
        if name in COMMANDS and isinstance(args, Mapping):
            return Command(str(name), dict(args))
        return None
    caller = data.get("caller")
    if not isinstance(caller, str) or not CALLER_ID.fullmatch(caller):
        return None
    source = data.get("source")
    source = source if isinstance(source, str) and len(source) <= 16 else "web"
    if kind == "join":
        return Join(
            caller, source, clean_display(data.get("display")), clean_nick(data.get("nick"))
        )
    if kind == "digit":
        digit = data.get("digit")
        if isinstance(digit, str) and digit in DIGITS and len(digit) == 1:
            return Digit(caller, digit, source)
        return None
    if kind == "leave":
        reason = data.get("reason")
        return Leave(caller, reason if reason in LEAVE_REASONS else "hangup")
    return None
