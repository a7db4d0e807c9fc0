"""Instrument tracks: what a caller plays when they hold one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

# How a track turns digits into notes (harmony.py):
#   drums        — figures: a digit chooses one built around its drum in the GM drum map,
#                  # plays a fill, * an accent (grooves.py)
#   scale        — degrees of the scale from the current chord's root (lead, pluck, bells)
#   chord_tones  — only the current chord's tones, across octaves (bass, pad)
#   chord        — the current chord, voiced and inverted by the digit (chords)
Mode = Literal["drums", "scale", "chord_tones", "chord"]
MODES: Final = ("drums", "scale", "chord_tones", "chord")


@dataclass(frozen=True, slots=True)
class TrackSpec:
    name: str
    color: str  # "#rrggbb"
    channel: int  # MIDI channel 0–15 (9 = GM drums, "channel 10")
    program: int  # GM program 0–127 (ignored on channel 9)
    samples: str  # the sample set in sounds/ (e.g. "kit", "bass", "bell")
    octave: int  # the octave of the track's lowest note (MIDI: C4 = 60 → octave 4)
    length: int  # note length in grid steps (16ths)
    mode: Mode
    velocity: int = 96
    # The speakers' mix (billboard/mix.py): -1 left … +1 right, dB (0 or less), and the
    # shares sent to the reverb and to the delay (0–1). MIDI out sends the pan, fader
    # and reverb as GM controllers (roles.mix_controls); GM has no delay send.
    pan: float = 0.0
    gain_db: float = 0.0
    reverb: float = 0.0
    delay: float = 0.0


# The colours are Okabe & Ito's colour-blind-safe set ("Color Universal Design",
# jfly.uni-koeln.de/color/), white in place of its black (a window lit black is dark):
# every pair stays at least 10 CIEDE2000 apart under protanopia, deuteranopia and
# tritanopia (tests/billboard/test_palette.py simulates them), and each track's lit
# windows also carry a pattern of their own (billboard/display/alive.py), so colour is
# never the only cue.
DEFAULT_TRACKS: Final[tuple[TrackSpec, ...]] = (
    # The beat and the bass in the centre, as on any record; the rest spread around them.
    TrackSpec("drums", "#e69f00", 9, 0, "kit", 0, 1, "drums", 110, 0.0, 0.0, 0.12, 0.0),
    TrackSpec("bass", "#0072b2", 0, 38, "bass", 2, 2, "chord_tones", 104),
    TrackSpec("chords", "#009e73", 1, 4, "keys", 4, 4, "chord", 80, -0.4, -1.0, 0.25, 0.0),
    TrackSpec("lead", "#d55e00", 2, 80, "lead", 5, 2, "scale", 96, 0.25, 0.0, 0.2, 0.25),
    TrackSpec("pluck", "#f0e442", 3, 45, "pluck", 4, 1, "scale", 92, -0.55, 0.0, 0.15, 0.3),
    TrackSpec("pad", "#56b4e9", 4, 89, "pad", 3, 8, "chord_tones", 70, 0.45, -2.0, 0.35, 0.0),
    TrackSpec("bells", "#cc79a7", 5, 14, "bell", 6, 2, "scale", 84, 0.6, -1.0, 0.3, 0.2),
    TrackSpec("percussion", "#ffffff", 9, 0, "perc", 0, 1, "drums", 100, -0.5, -1.0, 0.15),
)
