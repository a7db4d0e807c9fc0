"""What the engine keeps of each caller and each track while the night goes on: who
called when, which track they hold, and what each track loops, fades and plays.

Plain records with no behaviour of their own beyond reading a loop and counting a
caller's presses; the engine (engine.py) changes them. Pure, like the rest of the engine.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

from .grooves import Groove
from .tracks import TrackSpec


@dataclass(slots=True)
class Hit:
    """One press in a track's loop: kept as a digit, so the loop follows the chords."""

    step: int
    index: int  # digit index 0–9
    shift: int  # octave shift at the time
    velocity: int


# A caller's activity as the operator sees it: presses in the last minute. The relay
# lets a caller send 10 events a second, so a minute holds at most 600; a caller past
# PRESSES_KEPT shows that many.
PRESS_WINDOW_S: Final = 60.0
PRESSES_KEPT: Final = 1200


@dataclass(slots=True)
class Caller:
    caller: str
    source: str
    display: str | None
    nick: str | None
    joined: float
    last_active: float
    track: int | None = None
    since: float = 0.0  # when the current track was taken
    last_press: float | None = None  # their last press on this track
    presses: deque[float] = field(default_factory=lambda: deque(maxlen=PRESSES_KEPT))

    def pressed(self, now: float) -> None:
        """A press on their track at `now` (presses come in time order)."""
        self.presses.append(now)
        self.last_press = now

    def presses_per_minute(self, now: float) -> int:
        """Presses in the `PRESS_WINDOW_S` up to `now`. Older ones are forgotten as it
        counts: time only moves forward, so they can never count again."""
        presses = self.presses
        while presses and presses[0] <= now - PRESS_WINDOW_S:
            presses.popleft()
        return len(presses)


@dataclass(slots=True)
class Track:
    """A track as it plays: its caller, their loop (melodic tracks) or their drum figure
    (drums tracks, grooves.py), a departed caller's loop fading out, and its controls."""

    spec: TrackSpec
    index: int
    caller: str | None = None
    loop: list[Hit] = field(default_factory=list)
    last_press_step: int = -(10**9)
    fading: list[Hit] = field(default_factory=list)
    fade_from: int = 0
    shift: int = 0
    groove: Groove = field(default_factory=Groove)
    muted: bool = False
    last_note: float = -(10**9)

    def leads(self, step: int) -> bool:
        """A caller's figure plays the track at `step`: the bed's kit gives way to it."""
        heard = self.caller is not None and not self.muted
        return heard and self.groove.figure_at(step) is not None


def next_in_loop(loop: list[Hit], hit: Hit, length: int) -> int:
    """Steps from `hit` to the next later hit of `loop` (around the loop's end)."""
    gaps = [(h.step - hit.step) % length for h in loop if h.step != hit.step]
    return min((g for g in gaps if g > 0), default=length)
