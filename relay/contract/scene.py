"""The parts a billboard's ``state`` is made of (events.py's `State` holds them): a
track and what its caller is doing, a caller at the front of the line, a lit window,
and the banner the facade shows passers-by (the installation's number and the
keypad's address).

Each part writes its own ``data`` shape (`to_data`) and the readers here are total:
any JSON value in, a part or None out, never an exception. A caller's activity is
what an operator needs to choose whom to kick: presses in the last minute, seconds
since the last press, and the seconds left in their turn while others wait.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# The installation's own number as the banner shows it ("+1 415 555 0100"): public,
# printed on the building, so it travels whole — unlike a caller's.
PHONE_MAX: Final = 32
URL_MAX: Final = 512
_PHONE: Final = re.compile(r"[0-9+() .\-]{1,32}")
ACTIVITY_MAX_S: Final = 86_400  # a day: beyond it a figure is not an activity
BANNED_MAX: Final = 16  # the latest kicks a state lists (an operator undoes a recent one)


@dataclass(frozen=True, slots=True)
class TrackState:
    """One track as the ``state`` shows it; `display` is "…12" or a nickname. While a
    caller holds it: presses in the last minute, whole seconds since their last press
    (None before the first) and left in their turn (None while nobody waits)."""

    name: str
    color: str
    caller: str | None = None
    display: str | None = None
    muted: bool = False
    presses_min: int | None = None
    last_press_s: int | None = None
    turn_left_s: int | None = None

    def to_data(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "color": self.color,
            "caller": self.caller,
            "display": self.display,
            "muted": self.muted,
        }
        if self.caller is None:  # a free track has no activity: the state stays small
            return data
        activity = {
            "presses_min": self.presses_min,
            "last_press_s": self.last_press_s,
            "turn_left_s": self.turn_left_s,
        }
        return {**data, **activity}


@dataclass(frozen=True, slots=True)
class Waiting:
    """A caller at the front of the waiting line, and what the facade may show of them."""

    caller: str
    display: str | None = None


@dataclass(frozen=True, slots=True)
class Banned:
    """A caller the operator kicked, whose ban runs `ban_s` more seconds (relative: the
    billboard's and a console's clocks differ), and what the facade showed of them."""

    caller: str
    display: str | None
    ban_s: float

    def to_data(self) -> dict[str, Any]:
        return {"caller": self.caller, "display": self.display, "ban_s": math.ceil(self.ban_s)}


@dataclass(frozen=True, slots=True)
class Light:
    """A lit window: floor 0 at the top, `intensity` 0–1 (sent to two decimals)."""

    floor: int
    bay: int
    color: str
    intensity: float


@dataclass(frozen=True, slots=True)
class Banner:
    """What the facade invites with: the installation's number (None: scan only) and
    the keypad's address, for a wall mirror to show the same."""

    phone: str | None
    keypad: str | None

    def to_data(self) -> dict[str, Any]:
        return {"phone": self.phone, "keypad": self.keypad}


def read_activity(item: Mapping[str, Any]) -> tuple[int | None, int | None, int | None]:
    """A track's activity figures from its ``data``; a missing or strange one is None."""
    return (
        _count(item.get("presses_min")),
        _count(item.get("last_press_s")),
        _count(item.get("turn_left_s")),
    )


def read_banner(value: object) -> Banner | None:
    """The banner of a ``state``: a phone of digits, spaces and + ( ) . - only, and an
    http(s) address; None when absent or neither is readable."""
    if not isinstance(value, Mapping):
        return None
    phone, keypad = value.get("phone"), value.get("keypad")
    phone = phone.strip() if isinstance(phone, str) and _PHONE.fullmatch(phone.strip()) else None
    keypad = keypad if is_web_address(keypad) else None
    return Banner(phone, keypad) if phone or keypad else None


def is_web_address(value: object) -> bool:
    """An http(s) address of printable ASCII with no space, at most `URL_MAX` long."""
    return (
        isinstance(value, str)
        and value.startswith(("http://", "https://"))
        and len(value) <= URL_MAX
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def _count(value: object) -> int | None:
    """A whole count of 0 … a day, from an int or a finite float (rounded)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= ACTIVITY_MAX_S:
        return None
    return round(value)
