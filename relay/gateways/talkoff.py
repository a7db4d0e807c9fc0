"""Talk-off: whether the audio of a DTMF press holds its two pure tones and nothing else.

A pure core (numpy only) for relay/gateways/dtmf.py: the detector asks it once the two
blocks that would begin a press (2 × 102 samples, 25.5 ms at 8 kHz) were each heard as
the same key. Every other check of the detector looks at the eight DTMF frequencies
and at energy shares; a voice can pass them all. Speech (and a singer, and an
instrument) is harmonic: when two of a voice's harmonics land on a row and a column,
its other harmonics lie between and around them, each standing out of deep valleys.
DTMF is two pure tones; noise is flat or sloping, never peaked.

So: the pair under a Hann window (its main lobe ±78 Hz), zero-padded to a 15.6 Hz
grid; the *guard* is the telephone band (300–3,400 Hz) less 100 Hz either side of each
tone's peak. The pair is pure when the guard's loudest bin is

1. more than 10 dB under the weaker tone (no third tone), and
2. if within 20 dB of it, less than 24 dB above the guard's median (no harmonic).

Measured on relay/rehearsal/dtmf_corpus.py (bench/dtmf_margins.py prints the false
digits): the pairs of 3,300 s of espeak-ng speech in 14 + 240 voices that were heard
as a key (2,700 more seconds held out while choosing the numbers: the same) had their
loudest guard bin at −16 … +5 dB of the weaker tone; those under −10 dB stood 27–35 dB
above the guard's median. The pairs of 9,500 presses in white and pink noise at 6 dB
SNR: loudest bin ≤ −9.7 dB (the first pair of a 40 ms tone: the next pair is asked
too, and none of those presses is lost), standing ≤ 14 dB (white) and ≤ 20 dB (pink)
above the median; a clean tone's loudest guard bin is its own sidelobe, ≤ −23 dB at
9 dB of twist.
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
under the weaker tone even at 9 dB of twist). A voice whose harmonics lie closer
(F0 < 100 Hz) puts several in each 78 Hz-wide detector bin, which the detector's
relative-peak and frequency checks refuse."""
THIRD_TONE_DB: Final = -10.0
"""A guard peak this close to the weaker tone (or louder) is a third tone."""
HARMONIC_DB: Final = -20.0
PROMINENCE_DB: Final = 24.0
"""A guard peak within HARMONIC_DB of the weaker tone that stands PROMINENCE_DB above
the guard's median is a harmonic (noise at 6 dB SNR: ≤ 20 dB; speech: ≥ 27 dB)."""

_FFT: Final = 512
_BIN_HZ: Final = SAMPLE_RATE / _FFT
_WINDOW: Final = np.hanning(PAIR_SAMPLES + 2)[1:-1]
_BINS: Final = np.arange(_FFT // 2 + 1) * _BIN_HZ
_GUARD: Final = (GUARD_HZ[0] <= _BINS) & (GUARD_HZ[1] >= _BINS)
_GAP_BINS: Final = round(GUARD_GAP_HZ / _BIN_HZ)
_PEAK_TOLERANCE: Final = 0.025  # where a tone may peak: the detector's frequency check


def guard_levels(pair: NDArray[np.float64], row_hz: float, column_hz: float) -> tuple[float, float]:
    """(the guard's loudest bin against the weaker tone, against the guard's median),
    in dB, for `pair` (PAIR_SAMPLES) heard as the tones `row_hz` + `column_hz`."""
    spectrum = np.abs(np.fft.rfft(pair * _WINDOW, _FFT)) ** 2
    guard = _GUARD.copy()
    weaker = math.inf
    for hz in (row_hz, column_hz):
        low = int(hz * (1.0 - _PEAK_TOLERANCE) / _BIN_HZ)
        high = int(hz * (1.0 + _PEAK_TOLERANCE) / _BIN_HZ) + 2
        peak = low + int(np.argmax(spectrum[low:high]))
        weaker = min(weaker, float(spectrum[peak]))
        guard[max(0, peak - _GAP_BINS) : peak + _GAP_BINS + 1] = False
    others = spectrum[guard]
    loudest = float(others.max())
    tiny = 1e-30  # digital silence around perfect tones
    return (
        10.0 * math.log10(max(loudest, tiny) / max(weaker, tiny)),
        10.0 * math.log10(max(loudest, tiny) / max(float(np.median(others)), tiny)),
    )


def pure_pair(pair: NDArray[np.float64], row_hz: float, column_hz: float) -> bool:
    """Whether `pair` (PAIR_SAMPLES at 8 kHz, where the detector heard the tones
    `row_hz` and `column_hz` in both halves) holds those two tones and no third: no
    guard peak within 10 dB of the weaker tone, nor one within 20 dB of it that stands
    24 dB above the guard's median. A pair of another size is never pure."""
    if pair.shape != (PAIR_SAMPLES,) or not 0 < row_hz < column_hz < GUARD_HZ[1]:
        return False
    against_tone, against_median = guard_levels(pair, row_hz, column_hz)
    if against_tone >= THIRD_TONE_DB:
        return False
    return not (against_tone >= HARMONIC_DB and against_median >= PROMINENCE_DB)
