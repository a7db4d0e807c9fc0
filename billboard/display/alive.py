"""What keeps the facade alive, decided without pixels: the beat's pulse, the wash of
a section change, the calm of a break, the idle show's colour waves, a note's ripple,
the playhead climbing each track's region, who joined and what each player is called,
and each track's window pattern. Every one is a pure function of the scene (its time,
step and phase), never of a clock, so a test draws any moment it likes and two
billboards showing one scene show the same light; `facade` draws them.
"""

from __future__ import annotations

import colorsys
import math
from typing import Final

from billboard.engine.lighting import BED_LEVEL
from billboard.engine.scene import Scene, TrackView

from .content import player_label
from .palette import BLACK, RGB, WINDOW_OFF, mix, rgb

STEPS_PER_BEAT: Final = 4
STEPS_PER_BAR: Final = 16

# The pulse: every unlit window swells towards PULSE_COLOR on the beat and settles
# within half a beat (so the off-beat half shows the building as it is); the bar's
# downbeat swells fully, the other beats to PULSE_OFFBEAT.
PULSE_COLOR: Final[RGB] = (72, 80, 108)
PULSE_OFFBEAT: Final = 0.5
# How each section carries the pulse and the building's own light: the break is a
# darker, calmer building; the drop pushes.
SECTION_PULSE: Final = {"intro": 0.8, "build": 1.0, "drop": 1.0, "break": 0.35}
BREAK_DARKEN: Final = 0.45  # of the way from an unlit window to black, in a break

# A section change washes every window towards WASH_COLOR, strongest into a drop, and
# fades with WASH_S (seconds): seen from the street as the whole building taking a breath.
WASH_COLOR: Final[RGB] = (255, 238, 210)
WASH_PEAK: Final = {"drop": 0.9, "build": 0.45, "break": 0.3, "intro": 0.3}
WASH_S: Final = 0.6

# The idle show (nobody playing): slow colour waves across the whole building, in the
# manner of Blinkenlights, one hue band crossing it every IDLE_PERIOD_S.
IDLE_PERIOD_S: Final = 9.0
IDLE_LEVEL: Final = 0.55  # how bright the waves light a window (0 … 1 of its colour)

# A player's note (a bed note lights at `BED_LEVEL`, never above) ripples out of its
# window while its light decays from full to the bed's level: a ring in the track's
# colour, growing from the window's edge to RIPPLE_REACH window half-sizes.
RIPPLE_REACH: Final = 2.6

# The playhead climbs each track's region, window by window, once a loop; its window
# takes a tint of the track's colour, stronger on a step the loop plays.
CHASE_TINT: Final = 0.22
CHASE_HIT: Final = 0.45

# A join is a moment on the building for JOIN_S seconds after the caller takes a track.
JOIN_S: Final = 3.5
JOIN_FADE_S: Final = 0.6

# Each track's lit windows carry a pattern of darker marks, so colour is never the only
# cue (and the centre of a window always shows the track's own colour). The marks are
# rectangles (u0, v0, u1, v1) of the window, 0 … 1 across and down.
Marks = tuple[tuple[float, float, float, float], ...]
_ROWS: Final[Marks] = ((0.0, 0.18, 1.0, 0.3), (0.0, 0.7, 1.0, 0.82))
_COLUMNS: Final[Marks] = ((0.18, 0.0, 0.3, 1.0), (0.7, 0.0, 0.82, 1.0))
PATTERNS: Final[dict[str, Marks]] = {
    "full": (),
    "rows": _ROWS,
    "columns": _COLUMNS,
    "grid": _ROWS + _COLUMNS,
    "frame": (
        (0.1, 0.1, 0.9, 0.22),
        (0.1, 0.78, 0.9, 0.9),
        (0.1, 0.22, 0.22, 0.78),
        (0.78, 0.22, 0.9, 0.78),
    ),
    "corners": (
        (0.0, 0.0, 0.3, 0.3),
        (0.7, 0.0, 1.0, 0.3),
        (0.0, 0.7, 0.3, 1.0),
        (0.7, 0.7, 1.0, 1.0),
    ),
    "slot": ((0.0, 0.0, 1.0, 0.25), (0.0, 0.75, 1.0, 1.0)),
    "pillar": ((0.0, 0.0, 0.25, 1.0), (0.75, 0.0, 1.0, 1.0)),
}
PATTERN_NAMES: Final = tuple(PATTERNS)
MARK_LEVEL: Final = 0.3  # a mark's light, as a share of the window's


def step_seconds(scene: Scene) -> float:
    """How long one step lasts at the scene's tempo."""
    return 60.0 / max(1.0, scene.bpm) / STEPS_PER_BEAT


def beat_pulse(scene: Scene) -> float:
    """The building's swell now, 0 … 1: full at the bar's downbeat, `PULSE_OFFBEAT` at
    the other beats, gone half a beat later; scaled by the section (`SECTION_PULSE`)."""
    into_beat = ((scene.step % STEPS_PER_BEAT) + scene.phase) / STEPS_PER_BEAT
    if into_beat >= 0.5:
        return 0.0
    strength = 1.0 if scene.step % STEPS_PER_BAR < STEPS_PER_BEAT else PULSE_OFFBEAT
    return strength * SECTION_PULSE.get(scene.section, 1.0) * (1.0 - 2.0 * into_beat) ** 2


def section_wash(scene: Scene) -> float:
    """How strongly a section change still washes the building, 0 … 1."""
    if scene.section_step <= 0:
        return 0.0  # the music's first section: nothing changed
    age = (scene.step - scene.section_step + scene.phase) * step_seconds(scene)
    if age < 0:
        return 0.0
    wash = WASH_PEAK.get(scene.section, 0.3) * math.exp(-age / WASH_S)
    return wash if wash > 0.02 else 0.0


def idle_color(floor: int, bay: int, facade_floors: int, facade_bays: int, time: float) -> RGB:
    """A window's colour in the idle show: hue bands drifting diagonally across the
    building, with a slower swell of brightness crossing them."""
    u = bay / max(1, facade_bays)
    v = floor / max(1, facade_floors)
    phase = time / IDLE_PERIOD_S
    hue = (u * 0.8 + v * 0.35 - phase) % 1.0
    swell = 0.5 + 0.5 * math.sin(2 * math.pi * (u * 1.3 - v * 0.6 + phase * 1.7))
    r, g, b = colorsys.hsv_to_rgb(hue, 0.8, 1.0)
    full = (round(r * 255), round(g * 255), round(b * 255))
    return mix(WINDOW_OFF, full, IDLE_LEVEL * (0.25 + 0.75 * swell))


def chase_window(view: TrackView, scene: Scene) -> tuple[int, int] | None:
    """The window (floor, bay) of `view`'s region the loop's playhead is at: it climbs
    the region from the bottom floor, bay by bay, once a loop (None: no region)."""
    if view.region is None:
        return None
    first, count = view.region
    floors = scene.facade.floors
    cells = max(1, count * floors)
    steps = max(1, scene.loop_steps)
    cell = (scene.step % steps) * cells // steps
    return floors - 1 - cell // count, first + cell % count


def ambient_colors(scene: Scene) -> list[RGB]:
    """Every window's own light before any note: index floor * bays + bay."""
    floors, bays = scene.facade.floors, scene.facade.bays
    if scene.attract:
        t = scene.time
        return [idle_color(f, b, floors, bays, t) for f in range(floors) for b in range(bays)]
    base = mix(WINDOW_OFF, BLACK, BREAK_DARKEN) if scene.section == "break" else WINDOW_OFF
    color = mix(base, PULSE_COLOR, beat_pulse(scene))
    wash = section_wash(scene)
    if wash:
        color = mix(color, WASH_COLOR, wash)
    out = [color] * (floors * bays)
    pos = scene.step % max(1, scene.loop_steps)
    for view in scene.tracks:
        if view.caller is None and not view.fading and view.region is None:
            continue
        at = chase_window(view, scene)
        if at is None:
            continue
        floor, bay = at
        tint = CHASE_HIT if pos in view.pattern else CHASE_TINT
        index = floor * bays + bay
        if 0 <= index < len(out):
            out[index] = mix(out[index], rgb(view.color), tint)
    return out


def ripple(intensity: float) -> float | None:
    """How far a lit window's ripple has spread, 0 (just played) … 1 (gone), or None
    when the light is no player's note (a bed note, or one faded to the bed's level).
    The light halves in `LIGHT_HALF_LIFE_S`, so its intensity is its age."""
    if intensity <= BED_LEVEL + 1e-6:
        return None
    return min(1.0, max(0.0, math.log2(1.0 / min(1.0, intensity))))


def join_strength(view: TrackView, time: float) -> float:
    """How strongly `view`'s join moment shows at `time`, 0 … 1: fading in and out over
    `JOIN_FADE_S` within `JOIN_S` after the caller took the track."""
    if view.caller is None or view.since is None:
        return 0.0
    age = time - view.since
    if not 0.0 <= age < JOIN_S:
        return 0.0
    return min(1.0, (age + 0.15) / 0.3, (JOIN_S - age) / JOIN_FADE_S)


def join_text(view: TrackView) -> str:
    """The words of a join moment: "Ana joins on bass"."""
    return f"{player_label(view)} joins on {view.name}"


def pattern_of(track_index: int) -> Marks:
    """The marks of the `track_index`-th track's lit windows (one pattern each)."""
    return PATTERNS[PATTERN_NAMES[track_index % len(PATTERN_NAMES)]]
