"""The short tonal cues a caller hears in their own phone mix: no speech files, three
figures generated from sine tones, each distinct by its shape, all inside the phone's
300–3,400 Hz band.

- ``track``: you have a track — a rising major arpeggio (C6 E6 G6 C7), bright, "go";
- ``front``: you are next in line — two equal knocks on A5, "ready";
- ``lost``: your turn is over — a falling minor third (G5 then E5), longer, "done".

Each tone has a raised-cosine attack and release (8 ms), so a cue starts and ends
without a click and its spectrum stays in the band. Pure numpy.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import numpy.typing as npt

RATE: Final = 8000
Cue = Literal["track", "front", "lost"]
CUES: Final[tuple[Cue, ...]] = ("track", "front", "lost")
CUE_PEAK: Final = 10 ** (-9 / 20)  # −9 dBFS: over the music, under the mix's ceiling
EDGE_S: Final = 0.008

# Each figure: (frequency Hz, seconds) per tone; 0 Hz is a rest.
FIGURES: Final[dict[Cue, tuple[tuple[float, float], ...]]] = {
    "track": ((1046.5, 0.07), (1318.5, 0.07), (1568.0, 0.07), (2093.0, 0.14)),
    "front": ((880.0, 0.09), (0.0, 0.07), (880.0, 0.09)),
    "lost": ((784.0, 0.16), (659.3, 0.28)),
}


def _tone(hz: float, seconds: float) -> npt.NDArray[np.float32]:
    frames = round(seconds * RATE)
    if hz <= 0:
        return np.zeros(frames, dtype=np.float32)
    t = np.arange(frames) / RATE
    # A touch of the second harmonic (still in band) carries on small earpieces.
    wave = np.sin(2 * np.pi * hz * t) + (0.25 * np.sin(4 * np.pi * hz * t) if hz < 1700 else 0)
    edge = min(frames // 2, round(EDGE_S * RATE))
    envelope = np.ones(frames)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, edge))
    envelope[:edge] = ramp
    envelope[frames - edge :] = ramp[::-1]
    return (wave * envelope).astype(np.float32)


def cue_sound(kind: Cue) -> npt.NDArray[np.float32]:
    """`kind`'s figure at 8 kHz, its peak at `CUE_PEAK`."""
    sound = np.concatenate([_tone(hz, s) for hz, s in FIGURES[kind]])
    peak = float(np.max(np.abs(sound)))
    return (sound * np.float32(CUE_PEAK / peak)).astype(np.float32)


CUE_SOUNDS: Final[dict[Cue, npt.NDArray[np.float32]]] = {k: cue_sound(k) for k in CUES}
