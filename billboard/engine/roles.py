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
notes. Timing is humanised too, by `nudge`: a note scheduled on its step sounds up to a
few milliseconds after it (never before: a press heard at once cannot be early), laid
back by role, each note of a chord on its own (a slight strum); the kick stays on the
grid, the floor everything else leans on. The same seed gives the same nudges.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from .events import Note, NoteOn
from .tracks import TrackSpec

if TYPE_CHECKING:
    from .bed import BedVoice

STEPS_PER_BAR: Final = 16
CEILING: Final = {"bass": 48, "pad": 84, "chords": 84, "melody": 96, "drums": 127}
# Hits a caller's loop keeps in one step, and in one bar, per role.
PER_STEP: Final = {"bass": 1, "pad": 1, "chords": 1, "melody": 1, "drums": 2}
PER_BAR: Final = {"bass": 8, "pad": 1, "chords": 2, "melody": 8, "drums": 12}
# Share of a track's velocity by where in the bar a note falls.
ACCENT: Final = {"downbeat": 1.0, "beat": 0.9, "eighth": 0.8, "sixteenth": 0.7}
HUMANISE: Final = 5  # ± this much velocity
# A role's share of the installation's timing nudge (`humanise_s`): the kick none.
NUDGE: Final = {"bass": 0.5, "pad": 1.0, "chords": 1.0, "melody": 1.0, "drums": 0.75}
KICKS: Final = frozenset({35, 36})


def role(spec: TrackSpec) -> str:
    """bass, pad, chords, melody or drums (the module's docstring)."""
    if spec.mode == "drums":
        return "drums"
    if spec.mode == "chord":
        return "chords"
    if spec.mode == "chord_tones":
        return "pad" if spec.length >= 8 else "bass"
    return "melody"


# MIDI controllers a track's mix goes out as (General MIDI): channel volume, pan, and
# the reverb send. GM has no delay send; a synth's own delay stays the musician's.
VOLUME, PAN, REVERB = 7, 10, 91
GM_VOLUME: Final = 100  # GM's default channel volume: a fader at 0 dB
GM_DRUMS: Final = 9  # channel 10: the kit


def mix_controls(spec: TrackSpec) -> tuple[tuple[int, int], ...]:
    """The (controller, value) pairs that set a synth's channel to `spec`'s mix: the
    fader (GM volume is 40·log10(value/127) dB, so 0 dB stays at GM's default 100), the
    pan (-1 → 0, centre 64, +1 → 127) and the reverb send (0–1 → 0–127)."""
    volume = round(GM_VOLUME * 10 ** (spec.gain_db / 40))
    pan = round(64 + spec.pan * 63.5)
    return (
        (VOLUME, max(0, min(127, volume))),
        (PAN, max(0, min(127, pan))),
        (REVERB, max(0, min(127, round(spec.reverb * 127)))),
    )


def part_spec(tracks: tuple[TrackSpec, ...], part: str) -> TrackSpec | None:
    """The track a pitched part of the bed (bass, chords, pad) stands in for: the first
    of that role, whose samples and mix it is heard with."""
    return next((t for t in tracks if role(t) == part), None)


def channel_setup(
    tracks: Sequence[TrackSpec], bed: Sequence[BedVoice]
) -> list[tuple[str, int, int | None, tuple[tuple[int, int], ...]]]:
    """What a synth's channels are set to at the start of a show (or of its recording):
    (who, channel, program, controls) for each track, then each voice of the bed ("bed
    bass", …, with the mix of the track it stands in for). The first to use a channel
    sets it; GM's drum channel takes no program (a program change there picks a kit)."""
    out: list[tuple[str, int, int | None, tuple[tuple[int, int], ...]]] = []
    seen: set[int] = set()
    owners: list[tuple[str, int, int, TrackSpec | None]]
    owners = [(t.name, t.channel, t.program, t) for t in tracks]
    owners += [
        (f"bed {v.part}", v.channel, v.program, part_spec(tuple(tracks), v.part)) for v in bed
    ]
    for name, channel, program, spec in owners:
        if channel in seen:
            continue
        seen.add(channel)
        controls = mix_controls(spec) if spec is not None else ()
        out.append((name, channel, None if channel == GM_DRUMS else program, controls))
    return out


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


def nudge(seed: int, note: NoteOn, track_role: str, most: float) -> float:
    """How late `note` sounds after its step, 0…`most` seconds scaled by its role's
    share (`NUDGE`; a kick 0), keyed by the seed, step, track and pitch."""
    if most <= 0 or (track_role == "drums" and note.note in KICKS):
        return 0.0
    key = zlib.crc32(f"{seed}/{note.step}/{note.track}/{note.note}/t".encode())
    return most * NUDGE[track_role] * (key % 1000) / 999


def humanised(
    notes: list[Note], seed: int, track_roles: dict[str, str], most: float, after: float
) -> list[Note]:
    """`notes` with each note-on due after `after` nudged late (`nudge`); note-offs and
    notes heard at once stay as they are."""
    if most <= 0:
        return notes
    out: list[Note] = []
    for note in notes:
        if isinstance(note, NoteOn) and note.time > after:
            late = nudge(seed, note, track_roles.get(note.track, "melody"), most)
            if late:
                note = NoteOn(
                    note.time + late, note.step, note.track, note.channel, note.note, note.velocity
                )
        out.append(note)
    return out
