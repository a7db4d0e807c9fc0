"""The engine's vocabulary: small frozen values in and out.

In: `Join`, `Digit`, `Leave` and `Command`, defined by the contract
(`relay.contract.events`, which also reads them from the wire, totally) and already
pseudonymised at the billboard's door. Out: `NoteOn`/`NoteOff` stamped with the time
they must sound, and the contract's `Assign`/`Left` for the callers (published on
``CHANNEL:state``) and `Notice` (on ``CHANNEL:callers`` only).
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.contract.callers import Notice
from relay.contract.events import (
    LEAVE_REASONS,
    Assign,
    CallerUpdate,
    Command,
    Digit,
    InputEvent,
    Join,
    Leave,
    Left,
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
# What the engine tells its callers: their place, their leaving, and a word that changes
# nothing of their place (a kick undone: ``unbanned``, told only on ``CHANNEL:callers``).
EngineUpdate = CallerUpdate | Notice


__all__ = [
    "LEAVE_REASONS",
    "Assign",
    "CallerUpdate",
    "Command",
    "Digit",
    "EngineUpdate",
    "InputEvent",
    "Join",
    "Leave",
    "Left",
    "Note",
    "NoteOff",
    "NoteOn",
    "Notice",
    "read_input",
    "to_data",
]
