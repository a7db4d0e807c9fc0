"""The engine's vocabulary: small frozen values in and out.

In: `Join`, `Digit`, `Leave` and `Command`, defined by the contract
(`relay.contract.events`, which also reads them from the wire, totally) and already
pseudonymised at the billboard's door. Out: `NoteOn`/`NoteOff` stamped with the time
they must sound, and `Assign`/`Left` for the callers (published on ``CHANNEL:state``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.contract.events import (
    LEAVE_REASONS,
    Command,
    Digit,
    InputEvent,
    Join,
    Leave,
    read_input,
    to_data,
)


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


__all__ = [
    "LEAVE_REASONS",
    "Assign",
    "CallerUpdate",
    "Command",
    "Digit",
    "InputEvent",
    "Join",
    "Leave",
    "Left",
    "Note",
    "NoteOff",
    "NoteOn",
    "read_input",
    "to_data",
]
