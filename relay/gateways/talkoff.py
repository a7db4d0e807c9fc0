"""Talk-off: whether the audio of a DTMF press holds its two pure tones and nothing else.

A pure core (numpy only) for relay/gateways/dtmf.py: the detector asks it once the two
blocks that would begin a press (2 × 102 samples, 25.5 ms at 8 kHz) were each heard as
the same key. Every other check of the detector looks at the eight DTMF frequencies
and at energy shares; a voice can pass them all. Speech (and a singer, and an
instrument) is harmonic: when two of a voice's harmonics land on a row and a column,
its other harmonics lie between and around them, each standing out of deep valleys.
DTMF is two pure tones; noise is flat or sloping, never peaked.

So: the pair under a Hann window (main lobe ±78 Hz), zero-padded to a 15.6 Hz grid;
the *guard* is the telephone band (300–3,400 Hz) less 100 Hz either side of each
tone's peak. The pair is pure when the guard's loudest bin is

1. more than 10 dB under the weaker tone (no third tone), and
2. if within 20 dB of it, less than 26.5 dB above the guard's floor, its quietest
   fifth (20th percentile) (no harmonic).

Measured with relay/rehearsal/dtmf_corpus.py (bench/dtmf_margins.py prints the false
digits): 11,800 s of espeak-ng speech (TALKERS, and 4 × 240 of `more_talkers`, seeds
14, 99, 2024, 31337) gave 50 false digits before, 0 with this; 1,050 s of music 3,
now 0. The rule grew from those misses; seed 31337's talkers were held out until its
first version was set (18 → 0). The speech pairs heard as a key had their loudest
guard bin at −16 … +5 dB of the weaker tone; those under −10 dB stood ≥ 29.1 dB above
the floor (a sung vowel, F0 232 Hz). 3,100 presses in white and pink noise at 6 dB
SNR: loudest bin ≤ −9.7 dB (the first pair of a 40 ms tone; the next pair is asked
too, and none of those presses is lost), standing ≤ 24.2 dB above the floor: 26.5 is
between the two. A clean tone's loudest guard bin is its own sidelobe, ≤ −23 dB at
9 dB of twist. Known gap: a buzzy voice whose harmonics are all alike, within 10 dB of
a flat floor of its own harmonics, raises the floor with them and passes (a
synthetic comb can; the corpus's voices, with formants, do not).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE: Final = 8000
PAIR_SAMPLES: Final = 204
"""Two of the detector's 102-sample blocks (Asterisk's DTMF_GSIZE)."""
GUARD_HZ: Final = (300.0, 3400.0)
"""Where a third tone is looked for: the telephone band (a call carries little below
300 Hz, and pink noise and hum put most of their energy there)."""
GUARD_GAP_HZ: Final = 100.0
"""How close to each tone's peak the guard looks: beyond the Hann window's main lobe,
where a tone's own leakage is ≥ 31 dB down (the louder tone's sidelobes stay ≥ 22 dB
under the weaker tone even at 9 dB of twist). Of a voice whose harmonics lie closer
(F0 < 100 Hz) only the farther harmonics are looked at."""
THIRD_TONE_DB: Final = -10.0
"""A guard peak this close to the weaker tone (or louder) is a third tone."""
HARMONIC_DB: Final = -20.0
PROMINENCE_DB: Final = 26.5
"""A guard peak within HARMONIC_DB of the weaker tone that stands PROMINENCE_DB above
the guard's floor is a harmonic (noise at 6 dB SNR: ≤ 24.2 dB; speech: ≥ 29.1 dB)."""
FLOOR_PERCENTILE: Final = 20.0
"""The guard's floor: the level a fifth of its bins stay under (the valleys between a
voice's harmonics; for noise, 5 dB under its median)."""

_FFT: Final = 512
_BIN_HZ: Final = SAMPLE_RATE / _FFT
_WINDOW: Final = np.hanning(PAIR_SAMPLES + 2)[1:-1]
_GUARD_BINS: Final = (math.ceil(GUARD_HZ[0] / _BIN_HZ), math.floor(GUARD_HZ[1] / _BIN_HZ) + 1)
_GAP_BINS: Final = round(GUARD_GAP_HZ / _BIN_HZ)
_PEAK_TOLERANCE: Final = 0.025  # where a tone may peak: the detector's frequency check
_THIRD_TONE: Final = 10.0 ** (THIRD_TONE_DB / 10.0)
_HARMONIC: Final = 10.0 ** (HARMONIC_DB / 10.0)
_PROMINENCE: Final = 10.0 ** (PROMINENCE_DB / 10.0)
_TINY: Final = 1e-30  # digital silence around perfect tones


def _guard(
    pair: NDArray[np.float64], row_hz: float, column_hz: float
) -> tuple[float, float, list[NDArray[np.float64]]]:
    """(the weaker tone's power, the guard's loudest bin's, the guard's stretches of
    bins: the band less GUARD_GAP_HZ around each tone's peak)."""
    transform = np.fft.rfft(pair * _WINDOW, _FFT)[: _GUARD_BINS[1]]
    spectrum = transform.real * transform.real + transform.imag * transform.imag
    weaker = math.inf
    edges = [_GUARD_BINS[0]]
    for hz in (row_hz, column_hz):
        low = int(hz * (1.0 - _PEAK_TOLERANCE) / _BIN_HZ)
        peak = low + int(spectrum[low : int(hz * (1.0 + _PEAK_TOLERANCE) / _BIN_HZ) + 2].argmax())
        weaker = min(weaker, float(spectrum[peak]))
        edges += [peak - _GAP_BINS, peak + _GAP_BINS + 1]
    edges.append(_GUARD_BINS[1])
    stretches = [spectrum[edges[i] : edges[i + 1]] for i in (0, 2, 4) if edges[i + 1] > edges[i]]
    loudest = max(float(stretch.max()) for stretch in stretches)
    return max(weaker, _TINY), max(loudest, _TINY), stretches


def _floor(stretches: list[NDArray[np.float64]]) -> float:
    """The guard's FLOOR_PERCENTILE (as np.percentile's nearest rank, 20× sooner)."""
    others = np.concatenate(stretches)
    rank = int(others.size * FLOOR_PERCENTILE / 100.0)
    return max(float(np.partition(others, rank)[rank]), _TINY)


def guard_levels(pair: NDArray[np.float64], row_hz: float, column_hz: float) -> tuple[float, float]:
    """(the guard's loudest bin against the weaker tone, against the guard's floor),
    in dB, for `pair` (PAIR_SAMPLES) heard as the tones `row_hz` + `column_hz`."""
    weaker, loudest, others = _guard(pair, row_hz, column_hz)
    return 10.0 * math.log10(loudest / weaker), 10.0 * math.log10(loudest / _floor(others))


def pure_pair(pair: NDArray[np.float64], row_hz: float, column_hz: float) -> bool:
    """Whether `pair` (PAIR_SAMPLES at 8 kHz, where the detector heard the tones
    `row_hz` and `column_hz` in both halves) holds those two tones and no third: no
    guard peak within 10 dB of the weaker tone, nor one within 20 dB of it that stands
    26.5 dB above the guard's floor. A pair of another size, or with NaN or infinite
    samples, is never pure."""
    if pair.shape != (PAIR_SAMPLES,) or not 0 < row_hz < column_hz < GUARD_HZ[1]:
        return False
    if not math.isfinite(float(pair @ pair)):
        return False
    weaker, loudest, others = _guard(pair, row_hz, column_hz)
    if loudest >= _THIRD_TONE * weaker:
        return False
    if loudest < _HARMONIC * weaker:
        return True  # a clean tone: its own sidelobes, far under (no floor needed)
    return loudest < _PROMINENCE * _floor(others)
