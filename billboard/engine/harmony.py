"""Keys, scales, the chord progression, and how a digit becomes notes.

Every digit lands on the current chord or scale, so whatever a caller presses sounds
good with everyone else: melodic tracks follow the progression (default I–V–vi–IV,
one chord a bar), drums use the General MIDI drum map (and grooves.py's figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from relay.contract.events import KEY_NAMES

from .tracks import TrackSpec

STEPS_PER_BAR: Final = 16
NOTE_NAMES: Final = KEY_NAMES  # pitch class → name, as a `state` reports the key
_FLATS: Final = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}

# The intervals of the scales the contract names (SCALE_NAMES, in its order: a test holds
# the two equal).
SCALES: Final[dict[str, tuple[int, ...]]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
}

# Roman numerals → 0-based scale degrees.
_NUMERALS: Final = {"i": 0, "ii": 1, "iii": 2, "iv": 3, "v": 4, "vi": 5, "vii": 6}

# Digit → GM drum note (channel 10). "kit": 1 kick, 2 snare, 3 closed hat, 4 clap,
# 5 open hat, 6 low tom, 7 high tom, 8 side stick, 9 ride, 0 crash.
DRUM_MAPS: Final[dict[str, tuple[int, ...]]] = {
    "kit": (36, 38, 42, 39, 46, 45, 50, 37, 51, 49),
    # 1 hi conga, 2 lo conga, 3 hi bongo, 4 lo bongo, 5 cowbell, 6 tambourine,
    # 7 maracas, 8 claves, 9 agogo, 0 triangle.
    "perc": (62, 64, 60, 61, 56, 54, 70, 75, 67, 81),
}


def digit_index(digit: str) -> int | None:
    """Keypad order: "1" → 0 … "9" → 8, "0" → 9; None for * and #."""
    if digit.isdigit() and len(digit) == 1:
        return 9 if digit == "0" else int(digit) - 1
    return None


def parse_key(name: str) -> int:
    """A key name ("C", "f#", "Bb") → pitch class 0–11; ValueError otherwise."""
    cleaned = name.strip()
    if not cleaned:
        raise ValueError("empty key")
    cleaned = cleaned[0].upper() + cleaned[1:].lower().replace("♯", "#").replace("♭", "b")
    cleaned = _FLATS.get(cleaned, cleaned)
    if cleaned not in NOTE_NAMES:
        raise ValueError(f"unknown key {name!r}")
    return NOTE_NAMES.index(cleaned)


def parse_progression(text: str) -> tuple[int, ...]:
    """ "I-V-vi-IV" → (0, 4, 5, 3); ValueError on anything else."""
    degrees = []
    for part in text.replace(" ", "").split("-"):
        degree = _NUMERALS.get(part.lower())
        if degree is None:
            raise ValueError(f"unknown chord {part!r} in progression {text!r}")
        degrees.append(degree)
    if not degrees:
        raise ValueError("empty progression")
    return tuple(degrees)


@dataclass(frozen=True, slots=True)
class Harmony:
    key: int = 0  # pitch class of the tonic
    scale: str = "major"
    progression: tuple[int, ...] = (0, 4, 5, 3)  # I–V–vi–IV
    bars_per_chord: int = 1

    @property
    def key_name(self) -> str:
        return NOTE_NAMES[self.key]

    def chord_degree(self, step: int) -> int:
        """The scale degree of the chord that holds at `step`."""
        bar = step // STEPS_PER_BAR
        return self.progression[(bar // self.bars_per_chord) % len(self.progression)]

    def pitch(self, degree: int, octave: int) -> int:
        """Scale degree (any integer; beyond the scale carries into the next octave)
        in `octave` (MIDI octave: C4 = 60), clamped to 0–127."""
        steps = SCALES[self.scale]
        octave_carry, index = divmod(degree, len(steps))
        note = 12 * (octave + 1 + octave_carry) + self.key + steps[index]
        return max(0, min(127, note))

    def bed_notes(self, part: str, tone: int, step: int, octave: int) -> tuple[int, ...]:
        """The groove bed's notes at `step`: the bass on chord tone `tone` (0 root,
        1 third, 2 fifth) in `octave`; the chords and the pad as the triad in root
        position."""
        root = self.chord_degree(step)
        if part == "bass":
            return (self.pitch(root + 2 * tone, octave),)
        return tuple(self.pitch(root + d, octave) for d in (0, 2, 4))

    def notes_for(self, spec: TrackSpec, index: int, step: int, shift: int) -> tuple[int, ...]:
        """The notes digit `index` (0–9) plays on `spec` at `step`, `shift` octaves off."""
        if spec.mode == "drums":
            return (DRUM_MAPS.get(spec.samples, DRUM_MAPS["kit"])[index],)
        root = self.chord_degree(step)
        octave = spec.octave + shift
        if spec.mode == "scale":
            return (self.pitch(root + index, octave),)
        up = min(index // 3, 2)
        tone = index % 3
        if spec.mode == "chord_tones":
            # Root, third, fifth of the chord (scale triads), then the next octave.
            return (self.pitch(root + 2 * tone, octave + up),)
        # "chord": the triad, inverted by the digit (1 root position, 2 first, 3 second).
        triad = [root, root + 2, root + 4]
        for i in range(tone):
            triad[i] += len(SCALES[self.scale])
        return tuple(sorted(self.pitch(d, octave + up) for d in triad))
