"""Drum parts a caller shapes: on a drums track (the kit, the hand percussion) a key
chooses a figure, a bar's pattern that loops in time, never a lone hit.

What a caller on the kit or the percussion hears:

- **1–9, 0** choose the figure built around that key's drum. The drum map
  (harmony.DRUM_MAPS) stays the keypad's legend: on the kit 1 kick, 2 snare, 3 closed
  hat, 4 clap, 5 open hat, 6 low tom, 7 high tom, 8 side stick, 9 ride, 0 crash; on the
  percussion 1 high conga, 2 low conga, 3 high bongo, 4 low bongo, 5 cowbell,
  6 tambourine, 7 maracas, 8 claves, 9 agogo, 0 triangle. The drum itself sounds at once,
  on the press's step, so every press is heard; the figure takes over on the next beat
  not yet played, and loops bar after bar until another key. A kit figure is the style's
  own beat for the section (bed.py) varied by the key's drum, which leads and takes the
  place of the part it would clash with (a ride replaces the hats, a clap the snare): a
  caller varies the groove, never starts it from silence. A percussion figure is the
  key's drum beside a companion the style chooses (pop's tambourine on the backbeat,
  house's shaker on the off-beats, hip-hop's claves), thinned to its 8ths in an intro or
  a break.
- **#** plays a fill into the next bar: the bar's last beat (what is left of it when
  pressed later; the next bar's when fewer than `FILL_MIN` steps are left) rolls over
  the snare and toms (congas and bongos on the percussion), and the kit crashes on the
  next downbeat; the press itself sounds a snare (a high conga) at once. Before any
  digit, `#` takes over the kit with the style's own beat, as it was playing.
- **\\*** an accent: a crash (on the percussion, the cowbell) at once; the figure goes on.

A figure fills into every section change too (the last bar of a section, bed.py), so the
caller's part follows the arrangement. Every kit bar keeps its kick on the first step:
the caller leads the whole kit, the groove's anchor stays. A bar holds at most
`roles.PER_BAR["drums"]` hits and a step at most `roles.PER_STEP["drums"]`; beyond
them the style's hats go first, at the weakest places of the bar, then the figure's
companions, never the kick on one.

Pure and keyed by step: the same presses give the same notes; which fill a bar rolls
is a crc32 of the seed, the bar and the drum set, as roles.humanise varies velocities.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from functools import cache
from typing import Final

from .bed import DRUM_NOTES, LEVELS, POP, STEPS, STYLES, Style
from .events import Note, NoteOff, NoteOn
from .harmony import DRUM_MAPS, digit_index
from .roles import PER_BAR, PER_STEP, humanise, strength
from .tracks import TrackSpec

BEAT: Final = 4  # steps: a figure takes over on a beat
FILL_FROM: Final = 12  # a fill rolls over the bar's last beat …
FILL_MIN: Final = 2  # … or at least this much of it, else over the next bar's
BASE: Final = 10  # the figure that is the style's own beat (the percussion has none)
KICK: Final = 36
Hits = tuple[tuple[int, float], ...]  # (drum note, share of the track's velocity)


@dataclass(frozen=True, slots=True)
class Figure:
    """What a key chooses: (drum, 16-letter pattern) parts, the key's own drum first,
    and the parts of the style's beat it takes the place of (bed.DRUM_NOTES' names)."""

    parts: tuple[tuple[int, str], ...]
    replaces: frozenset[str] = frozenset()


_HATS: Final = frozenset({"hat", "open_hat"})
# In the drum map's order: keys 1–9, then 0.
KIT: Final = (
    Figure(((36, "X..x..x.X.x....."),), frozenset({"kick"})),  # kick: a bouncing kick
    Figure(((38, "....X..o.o..X..o"),), frozenset({"snare"})),  # snare, with ghost notes
    Figure(((42, "x..x..x.x..x..x."),), _HATS),  # closed hat: 3 + 3 + 2
    Figure(((39, "....X.......X..x"),), frozenset({"snare"})),  # clap on the backbeat
    Figure(((46, "..X...x...x...x."), (42, "x...x...x...x...")), _HATS),  # open hat: disco
    Figure(((45, "...x..x...x..x.."),), _HATS),  # low tom: a tribal floor
    Figure(((50, "..x..x....x..x.."),)),  # high tom
    Figure(((37, "....X..x....X..."),), frozenset({"snare"})),  # side stick
    Figure(((51, "X...x.x.X...x.x."),), _HATS),  # ride
    Figure(((49, "X..............."), (38, "........X.......")), frozenset({"snare"})),  # half time
)
PERC: Final = (
    Figure(((62, "..x.x..x..x.x..x"), (64, "......X.......X."))),  # high conga: a tumbao
    Figure(((64, "X..x...X..x....."), (62, "....x.......x..."))),  # low conga
    Figure(((60, "x.xx..x.x.xx..x."),)),  # high bongo: a martillo
    Figure(((61, "x..x..x.....x.x."), (60, "..........x....."))),  # low bongo
    Figure(((56, "X..xX.x.X..xX.x."),)),  # cowbell
    Figure(((54, "..x.X.x...x.X.x."),)),  # tambourine
    Figure(((70, "x.xo..xox.xo..xo"),)),  # maracas
    Figure(((75, "X..x..x...x.x..."),)),  # claves: the son clave, 3–2
    Figure(((67, "X.x.x..x.x.x..x."),)),  # agogo
    Figure(((81, "X.x...x...x...x."),)),  # triangle
)
FIGURES: Final = {"kit": KIT, "perc": PERC}
# The percussion's companion in each style (and with no bed: pop's).
COMPANIONS: Final = {
    "pop": (54, "....x.......x..."),
    "house": (70, "..x...x...x...x."),
    "hiphop": (75, "......x.......x."),
}
# The rolls a fill may take, over the last beat; the drum after it on the next downbeat.
FILLS: Final = {
    "kit": (((38, "oxxX"),), ((50, "xx.."), (45, "..xX")), ((38, "x.x."), (45, ".x.X"))),
    "perc": (((62, "oxxX"),), ((60, "xx.."), (64, "..xX")), ((62, "x.x."), (64, ".x.X"))),
}
CRASH: Final = {"kit": 49}
# What `*` and a later-rolling `#` sound at once: drum map indices (crash / cowbell;
# snare / high conga).
ACCENT: Final = {"kit": 9, "perc": 4}
FILL_HIT: Final = {"kit": 1, "perc": 0}
# Each drum's share of the track's velocity, so a figure balances as the bed's kit does.
WEIGHT: Final = {36: 1.0, 37: 0.7, 38: 0.9, 39: 0.85, 42: 0.56, 45: 0.8, 46: 0.52, 49: 0.8}
WEIGHT_OTHERS: Final = 0.75
HUMANISE: Final = 4
# Who gives way first when a bar or a step is too full: higher ranks stay.
RANK: Final = {"kick": 60, "snare": 59, "hat": 10, "open_hat": 9}
RANK_FIGURE, RANK_COMPANION, RANK_FILL, RANK_CRASH, RANK_ONE = 50, 20, 80, 90, 100
_WEAKNESS: Final = {"downbeat": 0, "beat": 1, "eighth": 2, "sixteenth": 3}


def drum_set(samples: str) -> str:
    """The figures a track plays: the percussion's for its sample set, else the kit's
    (as harmony.notes_for falls back to the kit's map)."""
    return "perc" if samples == "perc" else "kit"


@cache
def bar_hits(
    kit: str,
    style: str | None,
    section: str,
    figure: int,
    fill_from: int | None = None,
    fill: int = 0,
    crash: bool = False,
) -> tuple[Hits, ...]:
    """The 16 steps of one bar of `figure` on `kit` ("kit" or "perc") in `style`'s
    `section` (None: no bed, pop's beat), with a fill from `fill_from` on (FILLS[kit]
    [fill]) and a crash on the downbeat: per step, the (note, level) pairs."""
    chosen = FIGURES[kit][figure] if figure != BASE else Figure(())
    beat = STYLES[style] if style is not None and style in STYLES else POP
    ranked: dict[tuple[int, int], tuple[int, float]] = {}  # (pos, note) → (rank, level)

    def add(rank: int, note: int, pattern: str, start: int = 0) -> None:
        for pos in range(start, STEPS):
            if pattern[pos] in LEVELS and ranked.get((pos, note), (-1, 0.0))[0] < rank:
                ranked[(pos, note)] = (rank, LEVELS[pattern[pos]])

    if kit == "kit":
        for part, pattern in beat.drums.get(section, beat.drums["drop"]).items():
            if part not in chosen.replaces:
                add(RANK[part], DRUM_NOTES[part], pattern)
    else:
        note, pattern = COMPANIONS.get(beat.name, COMPANIONS["pop"])
        if all(note != n for n, _ in chosen.parts):
            add(RANK_COMPANION, note, pattern)
    for i, (note, pattern) in enumerate(chosen.parts):
        add(RANK_FIGURE - i, note, pattern)
    if kit == "perc" and section in ("intro", "break"):
        ranked = {k: v for k, v in ranked.items() if k[0] % 2 == 0}
    if fill_from is not None:
        ranked = {k: v for k, v in ranked.items() if k[0] < fill_from}
        for note, roll in FILLS[kit][fill]:
            add(RANK_FILL, note, "." * (STEPS - len(roll)) + roll, fill_from)
    if crash and kit in CRASH:
        ranked[(0, CRASH[kit])] = (RANK_CRASH, 1.0)
    if kit == "kit":
        ranked[(0, KICK)] = (RANK_ONE, ranked.get((0, KICK), (0, 1.0))[1])
    return _thinned(ranked)


def _thinned(ranked: dict[tuple[int, int], tuple[int, float]]) -> tuple[Hits, ...]:
    """The hits kept: the PER_STEP highest ranked at a step, then, while the bar holds
    more than PER_BAR, the lowest ranked goes, the weakest place in the bar and the
    latest first."""
    kept: list[tuple[int, int, int, float]] = []  # (rank, pos, note, level)
    for pos in range(STEPS):
        here = sorted(((r, pos, n, lv) for (p, n), (r, lv) in ranked.items() if p == pos))
        kept += here[::-1][: PER_STEP["drums"]]
    while len(kept) > PER_BAR["drums"]:
        kept.remove(min(kept, key=lambda h: (h[0], -_WEAKNESS[strength(h[1])], -h[1])))
    steps: list[list[tuple[int, float]]] = [[] for _ in range(STEPS)]
    for _, pos, note, level in kept:
        steps[pos].append((note, level))
    return tuple(tuple(hits) for hits in steps)


@dataclass(slots=True)
class Groove:
    """One drums track's part: the figure its caller chose (from step `since`; `before`
    until then), the bar they asked a fill for, and, once they left, when it began to
    fade. A new caller starts with a fresh one."""

    figure: int | None = None  # a digit index, BASE, or None: nothing chosen yet
    since: int = 0
    before: int | None = None
    fill_bar: int = -1
    fill_from: int = FILL_FROM
    pressed: tuple[int, int] = (-1, -1)  # (step, note) a press sounded at once
    fade_from: int | None = None
    filled: int = -1  # the last bar that ended on a fill: the next one crashes in

    def figure_at(self, step: int) -> int | None:
        return self.figure if step >= self.since else self.before

    def press(self, key: str, step: int, first: int, samples: str) -> int:
        """A key pressed on the track, quantised to `step`; steps before `first` are
        rendered already. Returns the drum map index of the drum it sounds at once."""
        kit, start = drum_set(samples), max(step, first)
        index = digit_index(key)
        if index is not None:
            self._choose(index, start)
        elif key == "*":
            index = ACCENT[kit]
        else:
            bar, pos = divmod(start, STEPS)
            if pos > STEPS - FILL_MIN:
                bar, pos = bar + 1, FILL_FROM
            self.fill_bar, self.fill_from = bar, max(FILL_FROM, pos)
            if self.figure is None:  # the style's own beat, at once: nothing changes but the fill
                self._choose(BASE, start, at_once=True)
            index = FILL_HIT[kit]
        self.pressed = (step, DRUM_MAPS[kit][index])
        return index

    def _choose(self, figure: int, start: int, at_once: bool = False) -> None:
        """`figure` from the first beat at or after `start` (or from `start`); a figure
        chosen for a beat not yet reached is simply replaced."""
        if self.since <= start:
            self.before = self.figure
        self.figure, self.since = figure, start if at_once else start + (-start) % BEAT

    def left(self, step: int, fade: bool) -> Groove:
        """The part once its caller has left at `step`: fading out, or gone at once."""
        if fade and self.figure is not None:
            return dataclasses.replace(self, fade_from=step)
        return Groove()

    def hits(
        self, step: int, samples: str, style: Style | None, section: str, last_bar: bool, seed: int
    ) -> Hits:
        """The drums the figure plays at `step`, in the bar's `section` (bed.py), a fill
        when the caller asked for one or the bar ends its section (`last_bar`)."""
        figure = self.figure_at(step)
        if figure is None:
            return ()
        kit, (bar, pos) = drum_set(samples), divmod(step, STEPS)
        fill_from = self.fill_from if bar == self.fill_bar else FILL_FROM if last_bar else None
        shape = 0
        if fill_from is not None:
            shape = zlib.crc32(f"{seed}/{bar}/{samples}".encode()) % len(FILLS[kit])
            self.filled = bar if pos == STEPS - 1 else self.filled
        name = style.name if style is not None else None
        hits = bar_hits(kit, name, section, figure, fill_from, shape, self.filled == bar - 1)
        if self.pressed[0] != step:
            return hits[pos]
        return tuple(h for h in hits[pos] if h[0] != self.pressed[1])  # sounded at the press

    def pattern(self, step: int, samples: str, style: Style | None, section: str) -> list[int]:
        """The bar's positions the figure playing at `step` sounds on (for the facade)."""
        figure = self.figure_at(step)
        if figure is None:
            return []
        hits = bar_hits(drum_set(samples), style.name if style else None, section, figure)
        return [pos for pos, here in enumerate(hits) if here]


def notes(
    spec: TrackSpec, hits: Hits, step: int, when: float, off: float, seed: int, scale: float
) -> list[Note]:
    """The notes of `hits` at `step` (sounding at `when`, ending at `off`, a step on):
    each drum at its weight of the track's velocity, its level, `scale` (a fade), and
    humanised by the seed, the step and the drum."""
    out: list[Note] = []
    for note, level in hits:
        base = spec.velocity * WEIGHT.get(note, WEIGHT_OTHERS) * level * scale
        varied = humanise(seed, step, f"{spec.name}/{note}", HUMANISE)
        velocity = max(1, min(127, round(base) + varied))
        out.append(NoteOn(when, step, spec.name, spec.channel, note, velocity))
        out.append(NoteOff(off, step + 1, spec.name, spec.channel, note))
    return out
