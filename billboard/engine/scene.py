"""What the facade shows: a frozen snapshot the display draws and the billboard
publishes as its ``state`` event. Pure: built from the engine's state and a time."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from relay.contract.events import State
from relay.contract.scene import Banned, Light, TrackState, Waiting


@dataclass(frozen=True, slots=True)
class Facade:
    """A building's windows: a grid of `floors` × `bays` (floor 0 at the top). Which
    window a note lights is lighting.py's business (its track's region)."""

    floors: int = 7
    bays: int = 8


@dataclass(frozen=True, slots=True)
class Lit:
    floor: int
    bay: int
    color: str
    intensity: float  # 0–1, decaying after the note


@dataclass(frozen=True, slots=True)
class Activity:
    """What a track's caller is doing (Engine._activity): presses in the last minute,
    seconds since their last press (None before it) and left in their turn (None
    while nobody waits)."""

    presses_min: int
    last_press_s: float | None
    turn_left_s: float | None


@dataclass(frozen=True, slots=True)
class TrackView:
    name: str
    color: str
    caller: str | None
    display: str | None  # "…12" or a keypad nickname; never a full number
    muted: bool
    fading: bool
    pattern: tuple[int, ...]  # loop positions (0 … loop_steps-1) that hold a hit
    level: float  # 0–1: how recently it played
    region: tuple[int, int] | None = None  # the bays it lights: (first, how many)
    since: float | None = None  # when its caller took it (a join is a moment)
    activity: Activity | None = None  # while a caller holds it


@dataclass(frozen=True, slots=True)
class Scene:
    time: float
    step: int
    loop_steps: int
    bpm: float
    key: str
    scale: str
    facade: Facade
    tracks: tuple[TrackView, ...]
    # The front of the waiting line, and how many wait in all: the `state` event stays
    # small whatever the crowd (the relay caps a frame at 64 KiB).
    line: tuple[str, ...]
    line_length: int
    lit: tuple[Lit, ...]
    attract: bool
    paused: bool
    hud: dict[str, Any] = field(default_factory=dict)
    line_display: tuple[str | None, ...] = ()  # "…12" or a nickname, beside `line`
    style: str | None = None  # the groove bed's style (bed.STYLES' name, or "none")
    section: str = "intro"  # the bed's section: intro, build, drop or break
    section_step: int = 0  # the step the section began on (a change is seen on the facade)
    phase: float = 0.0  # how far into `step` `time` is, 0 … 1 (a pulse swells smoothly)
    banned: tuple[Banned, ...] = ()  # kicks whose ban runs, the latest first (bans.py)

    def to_state(self) -> dict[str, Any]:
        """The ``state`` event (published on CHANNEL:state), written by the
        contract (relay/contract/events.py): beside the `line` of ids, what the facade may show of
        each (`waiting`) and how many wait in all (`line` and `waiting` hold only the
        front)."""
        return State(
            tempo=self.bpm,
            key=self.key,
            scale=self.scale,
            step=self.step,
            floors=self.facade.floors,
            bays=self.facade.bays,
            tracks=tuple(_track_state(t) for t in self.tracks),
            line=self.line,
            waiting=tuple(
                Waiting(caller, display)
                for caller, display in zip(self.line, self.line_display, strict=False)
            ),
            line_length=self.line_length,
            lit=tuple(Light(w.floor, w.bay, w.color, w.intensity) for w in self.lit),
            attract=self.attract,
            paused=self.paused,
            hud=self.hud,
            style=self.style,
            banned=self.banned,
        ).to_data()

    def signature(self) -> tuple[Any, ...]:
        """What a change of state means for publishing (not the decaying lights)."""
        return (
            round(self.bpm, 1),
            self.key,
            self.scale,
            self.style,
            tuple((t.caller, t.display, t.muted) for t in self.tracks),
            self.line,
            self.line_length,
            self.attract,
            self.paused,
            tuple(b.caller for b in self.banned),
        )


def _track_state(view: TrackView) -> TrackState:
    """A track as the ``state`` carries it: its activity in whole seconds, which is all
    an operator reads ("3 s ago", "40 s left") and keeps the event small. A press 3.7 s
    ago was 3 s ago; 0.2 s left in a turn is still 1 s left."""
    act = view.activity
    if act is None:
        return TrackState(view.name, view.color, view.caller, view.display, view.muted)
    ago = None if act.last_press_s is None else math.floor(act.last_press_s)
    left = None if act.turn_left_s is None else math.ceil(act.turn_left_s)
    return TrackState(
        view.name, view.color, view.caller, view.display, view.muted,
        act.presses_min, ago, left,
    )  # fmt: skip


def decay(age: float, half_life: float) -> float:
    """Light left in a window `age` seconds after its note (1 at the note)."""
    return math.pow(0.5, age / half_life) if age >= 0 else 0.0
