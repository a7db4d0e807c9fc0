"""Where on the building the music lights up. Pure, like the rest of the engine.

The facade's bays are shared out among the tracks that sound, each a contiguous
*region* in track order whose width follows its weight: a track a caller plays weighs
`PLAYED`, one whose departed caller's loop still fades `FADING`, one that sounded in
the last bar (the groove bed's parts) `BED`, and a silent one nothing. So every bay is
used whatever the number of tracks (six bays or fourteen, one caller or twelve), a
player's region grows as they arrive and the others' shrink, and with nobody playing
the bed's parts share the whole building between them.

A note lights one window of its track's region: the floor by its pitch (a drum by its
kit piece: the kick low, the cymbals high), the bay the next along from its track's
last, so a loop walks across its region and is seen as motion. The bed's own notes light at half the
level of a caller's, so the building is never dark and never hides who plays.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

from .events import Note, NoteOn
from .roles import CEILING, role
from .scene import Facade, Lit, decay
from .seats import Track

LIGHT_HALF_LIFE_S: Final = 0.35
PLAYED, FADING, BED = 3.0, 2.0, 1.0  # a region's weight
BAR: Final = 16  # steps: a track that sounded within a bar keeps its region
BED_LEVEL: Final = 0.5  # the bed's notes light at this share of a caller's
Region = tuple[int, int]  # (first bay, how many)
# Where a kit piece lights, 0 the ground floor … 1 the top: the kick low, the snare and
# claps above it, the toms in the middle, the hats higher, the cymbals at the top.
KIT_HEIGHT: Final = {
    **dict.fromkeys((35, 36), 0.0),
    **dict.fromkeys((37, 38, 39, 40), 0.25),
    **dict.fromkeys((41, 43, 45, 47, 48, 50), 0.5),
    **dict.fromkeys((42, 44, 46), 0.75),
    **dict.fromkeys((49, 51, 52, 53, 55, 57, 59), 1.0),
}


def regions(bays: int, weights: Sequence[float]) -> list[Region | None]:
    """Bays 0 … `bays`-1 split into contiguous regions in the order of `weights`, each
    as wide as its share of the total weight (largest remainders round up); a weight of
    0 gets no region. With more weighted tracks than bays, each gets one bay, shared by
    neighbours: the k-th of n takes bay k·bays // n."""
    present = [i for i, w in enumerate(weights) if w > 0]
    out: list[Region | None] = [None] * len(weights)
    if not present or bays < 1:
        return out
    if len(present) >= bays:
        for k, i in enumerate(present):
            out[i] = (k * bays // len(present), 1)
        return out
    total = sum(weights[i] for i in present)
    spare = bays - len(present)  # beyond the one bay each is sure of
    exact = [weights[i] / total * spare for i in present]
    widths = [1 + int(e) for e in exact]
    by_remainder = sorted(range(len(present)), key=lambda k: (int(exact[k]) - exact[k], k))
    for k in by_remainder[: bays - sum(widths)]:
        widths[k] += 1
    first = 0
    for k, i in enumerate(present):
        out[i] = (first, widths[k])
        first += widths[k]
    return out


class Lighting:
    """The lights of one engine's facade: which region each track owns now, and the
    windows its notes lit, fading (`LIGHT_HALF_LIFE_S`)."""

    def __init__(self, facade: Facade, tracks: Sequence[Track]) -> None:
        self.facade = facade
        self.tracks = tracks
        self._by_name = {t.spec.name: t for t in tracks}
        self._step = 0  # the latest step lit
        self._sounded = [-(10**9)] * len(tracks)  # the step each track last lit
        self._walk = [0] * len(tracks)  # where in its region each track lights next
        self._lights: deque[tuple[float, int, int, str, float]] = deque(maxlen=512)
        self._regions: list[Region | None] = []
        self._weights: list[float] = []  # the weights the regions were made for

    def weights(self) -> list[float]:
        """Each track's weight now (the module's docstring)."""
        out = []
        for track in self.tracks:
            if track.caller is not None:
                out.append(PLAYED)
            elif track.fading or track.groove.fade_from is not None:
                out.append(FADING)
            elif self._step - self._sounded[track.index] <= BAR:
                out.append(BED)
            else:
                out.append(0.0)
        return out

    def regions(self) -> list[Region | None]:
        """The tracks' regions now: made again when a weight changed."""
        weights = self.weights()
        if weights != self._weights:
            self._weights = weights
            self._regions = regions(self.facade.bays, weights)
        return self._regions

    def light(self, track: Track, note: int, step: int, when: float, level: float = 1.0) -> None:
        """`note` of `track`, sounding at `when` on `step`, lights a window of its region."""
        spec = track.spec
        if spec.mode == "drums":
            position = KIT_HEIGHT.get(note, (note % 12) / 11)
        else:  # the track's register, from its lowest octave to its role's ceiling
            low = 12 * spec.octave
            position = (note - low) / max(12, CEILING[role(spec)] - low)
        floors = self.facade.floors
        floor = floors - 1 - min(floors - 1, int(min(1.0, max(0.0, position)) * floors))
        self._step = max(self._step, step)
        self._sounded[track.index] = step
        first, width = self.regions()[track.index] or (track.index % self.facade.bays, 1)
        bay = first + self._walk[track.index] % width
        self._walk[track.index] += 1
        self._lights.append((when, floor, bay, spec.color, level))
        track.last_note = when

    def bed(self, notes: Iterable[Note], step: int, when: float) -> None:
        """The groove bed's notes at `step` light their tracks' regions, at `BED_LEVEL`."""
        lit: set[str] = set()
        for note in notes:
            if isinstance(note, NoteOn) and note.track not in lit:
                lit.add(note.track)  # one window a track a step: the bed stays a backdrop
                track = self._by_name.get(note.track)
                if track is not None:
                    self.light(track, note.note, step, when, BED_LEVEL)

    def lit(self, now: float) -> tuple[Lit, ...]:
        """The windows alight at `now`, the brightest light of each, floor by floor."""
        best: dict[tuple[int, int], Lit] = {}
        for when, floor, bay, color, level in self._lights:
            intensity = decay(now - when, LIGHT_HALF_LIFE_S) * level
            if intensity < 0.05:
                continue
            seen = best.get((floor, bay))
            if seen is None or seen.intensity < intensity:
                best[(floor, bay)] = Lit(floor, bay, color, intensity)
        return tuple(sorted(best.values(), key=lambda w: (w.floor, w.bay)))
