"""Listening helpers shared by the sample library's tests and the speakers' tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 44100
Audio = npt.NDArray[np.float64]


def midi_hz(note: float) -> float:
    return float(440.0 * 2.0 ** ((note - 69) / 12))


def dominant_hz(audio: Audio, rate: int = RATE, lowest: float = 30.0) -> float:
    """The frequency of the strongest spectral peak (Hann window, zero-padded FFT)."""
    size = 1 << 20
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), size))
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    spectrum[freqs < lowest] = 0.0
    return float(freqs[int(np.argmax(spectrum))])


def cents(hz: float, reference: float) -> float:
    return float(1200.0 * np.log2(hz / reference))


def rms(audio: Audio) -> float:
    return float(np.sqrt(np.mean(audio**2))) if audio.size else 0.0
