"""Instruments that know their role: where each track may sound, how dense it may get,
which notes it may land on, and how hard it plays where in the bar.

A track's role follows from what it plays (`TrackSpec.mode`, its note length):

- **bass** (chord tones, short notes): at most C3 (MIDI 48), on 8ths at most;
- **pad** (chord tones, long notes) and **chords**: at most C6 (84); a pad holds its
  chord until the chord changes, and no longer;
- **melody** (scale degrees: lead, pluck, bells): at most C7 (96), one note a step;
  chord tones on the strong beats, and between them a scale tone only when it is not
  a semitone from the chord (it moves to the nearest chord tone): no rub with the bed;
- **drums**: the kit as it is.

Velocities follow the bar (the downbeat loudest, then beats, 8ths, 16ths), humanised by
a few steps keyed by the seed, the step and the track: the same events give the same
notes.
"""

from __future__ import annotations

import zlib
from typing import Final

from .tracks import TrackSpec

STEPS_PER_BAR: Final = 16
CEILING: Final = {"bass": 48, "pad": 84, "chords": 84, "melody": 96, "drums": 127}
# Hits a caller's loop keeps in one step, and in one bar, per role.
PER_STEP: Final = {"bass": 1, "pad": 1, "chords": 1, "melody": 1, "drums": 2}
PER_BAR: Final = {"bass": 8, "pad": 1, "chords": 2, "melody": 8, "drums": 12}
# Share of a track's velocity by where in the bar a note falls.
ACCENT: Final = {"downbeat": 1.0, "beat": 0.9, "eighth": 0.8, "sixteenth": 0.7}
HUMANISE: Final = 5  # ± this much velocity


def role(spec: TrackSpec) -> str:
    """bass, pad, chords, melody or drums (the module's docstring)."""
    if spec.mode == "drums":
        return "drums"
    if spec.mode == "chord":
        return "chords"
    if spec.mode == "chord_tones":
        return "pad" if spec.length >= 8 else "bass"
    return "melody"


def fold(note: int, ceiling: int) -> int:
    """`note` moved down by octaves until it is at most `ceiling`."""
    while note > ceiling and note - 12 >= 0:
        note -= 12
    return note


def quantise(step: int, track_role: str) -> int:
    """The step a press plays on: a bass waits for the next 8th."""
    if track_role == "bass" and step % 2:
        return step + 1
    return step


def strength(step: int) -> str:
    pos = step % STEPS_PER_BAR
    if pos == 0:
        return "downbeat"
    if pos % 4 == 0:
        return "beat"
    return "eighth" if pos % 2 == 0 else "sixteenth"


def humanise(seed: int, step: int, name: str, spread: int = HUMANISE) -> int:
    """A few steps of velocity, -spread..spread, the same for the same seed, step and
    track (or part): varied, yet a replay gives the same notes."""
    return zlib.crc32(f"{seed}/{step}/{name}".encode()) % (2 * spread + 1) - spread


def velocity(base: int, step: int, track: str, seed: int) -> int:
    """`base` accented by where `step` falls in the bar, and humanised."""
    accented = round(base * ACCENT[strength(step)]) + humanise(seed, step, track)
    return max(1, min(127, accented))


def consonant(note: int, chord: tuple[int, ...], step: int) -> int:
    """A melody note against the chord's pitch classes: on a beat, the nearest chord
    tone; between beats, the note itself unless it is a semitone from a chord tone."""
    classes = {c % 12 for c in chord}
    on_beat = step % 4 == 0
    rubs = any((note - c) % 12 in (1, 11) for c in classes)
    if note % 12 in classes or not (on_beat or rubs):
        return note
    for distance in (1, 2, 3):  # the nearest chord tone, the lower one first
        for candidate in (note - distance, note + distance):
            if candidate % 12 in classes:
                return candidate
    return note


def end_step(step: int, length: int, track_role: str, bars_per_chord: int) -> int:
    """Where a note ends: a pad at the chord's change at the latest."""
    end = step + length
    if track_role in ("pad", "chords"):
        change = (step // (STEPS_PER_BAR * bars_per_chord) + 1) * STEPS_PER_BAR * bars_per_chord
        end = min(end, change)
    return end
