#!/usr/bin/env python3
"""Generate dialjam's built-in instrument samples: sounds/*.wav and sounds/manifest.json.

Origin: every sample is synthesised by this script from plain numpy arithmetic and
fixed random seeds; no recording or third-party sample is used. Licence: the generated
WAV files and manifest are dedicated to the public domain under CC0 1.0
(https://creativecommons.org/publicdomain/zero/1.0/); the script itself is part of
dialjam (MIT).

    .venv/bin/python sounds/make_sounds.py            # rewrite the files beside this script
    .venv/bin/python sounds/make_sounds.py --out DIR  # or anywhere else

The output is deterministic: the same numpy on the same machine gives byte-identical
files on every run (tests/billboard/test_samples.py checks it).

Format: 16-bit mono PCM WAV at 44100 Hz, peaks at -3 dBFS, every file starting and
ending at silence (short fades, so no clicks). Sample sets, as `TrackSpec.samples`
names them:

- drum sets ("kit", "perc"): one file per General MIDI drum note (channel 10);
- pitched sets ("bass", "keys", "lead", "pluck", "pad", "bell"): two zones an octave
  apart, each recorded at a stated root MIDI note; the billboard plays a note by
  resampling the zone whose root is nearest, so across the two octaves around the
  roots (where harmony.py puts most of a track's notes) no note is shifted by more
  than six semitones, and attack and decay times stay close to what was designed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import wave
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

Signal = npt.NDArray[np.float64]

RATE: Final = 44100
PEAK_DBFS: Final = -3.0
# Oscillators stop their harmonics here, leaving room to pitch a zone up by six
# semitones (x1.41) before anything reaches the Nyquist frequency (22.05 kHz).
TOP_HZ: Final = 15000.0
TABLE_SIZE: Final = 8192  # one cycle of a band-limited wave, read by interpolation
MANIFEST_FORMAT: Final = 1
HERE: Final = Path(__file__).resolve().parent


# -- building blocks ---------------------------------------------------------------


def rng_for(name: str) -> np.random.Generator:
    """A generator seeded by the sound's own name: adding, removing or reordering
    sounds never changes the others."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def times(seconds: float) -> Signal:
    """Sample times (s) for a sound `seconds` long."""
    return np.arange(round(seconds * RATE), dtype=np.float64) / RATE


def midi_hz(note: float) -> float:
    """Equal temperament, A4 (MIDI 69) = 440 Hz."""
    return float(440.0 * 2.0 ** ((note - 69) / 12))


def decay(t: Signal, tau: float, start: float = 0.0) -> Signal:
    """exp(-(t - start) / tau) from `start` on, silence before it."""
    shifted = t - start
    return np.where(shifted >= 0, np.exp(-np.maximum(shifted, 0.0) / tau), 0.0)


def rise(t: Signal, seconds: float) -> Signal:
    """A raised-cosine attack from 0 to 1 over `seconds`."""
    ramp = np.clip(t / seconds, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * ramp)


def spectral(x: Signal, gain: Callable[[Signal], Signal]) -> Signal:
    """Zero-phase filtering by the magnitude response `gain(Hz)`. The signal is padded
    with zeros first, so the circular FFT does not fold its tail onto its head. Filter
    raw noise this way *before* shaping it with an envelope, so no pre-echo appears."""
    size = 1 << (2 * len(x) - 1).bit_length()
    spectrum = np.fft.rfft(x, size)
    hz = np.fft.rfftfreq(size, 1.0 / RATE).astype(np.float64)
    return np.fft.irfft(spectrum * gain(hz), size)[: len(x)]


def lowpass(x: Signal, cutoff: float, order: int = 2) -> Signal:
    """Butterworth-shaped magnitude low-pass."""
    return spectral(x, lambda hz: 1.0 / np.sqrt(1.0 + (hz / cutoff) ** (2 * order)))


def highpass(x: Signal, cutoff: float, order: int = 2) -> Signal:
    """Butterworth-shaped magnitude high-pass."""
    return spectral(
        x,
        lambda hz: np.where(
            hz > 0, 1.0 / np.sqrt(1.0 + (cutoff / np.maximum(hz, 1e-9)) ** (2 * order)), 0.0
        ),
    )


def bandpass(x: Signal, low: float, high: float, order: int = 2) -> Signal:
    """A high-pass at `low` followed by a low-pass at `high`."""
    return lowpass(highpass(x, low, order), high, order)


def noise(name: str, t: Signal) -> Signal:
    """White noise in [-1, 1), seeded by the sound's name."""
    return rng_for(name).uniform(-1.0, 1.0, len(t))


def sine(hz: float | Signal, t: Signal, phase: float = 0.0) -> Signal:
    """A sine at a fixed frequency (or an array of per-sample frequencies, integrated)."""
    if isinstance(hz, np.ndarray):
        return np.sin(2 * np.pi * np.cumsum(hz) / RATE + phase)
    return np.sin(2 * np.pi * hz * t + phase)


def table(f0: float, amplitude: Callable[[int], float]) -> Signal:
    """One cycle of the wave whose k-th harmonic has `amplitude(k)`, harmonics stopping
    below TOP_HZ: band-limited, so it never aliases at f0."""
    phase = np.arange(TABLE_SIZE, dtype=np.float64) / TABLE_SIZE
    wave_ = np.zeros(TABLE_SIZE)
    for k in range(1, int(TOP_HZ // f0) + 1):
        a = amplitude(k)
        if a:
            wave_ += a * np.sin(2 * np.pi * k * phase)
    return wave_


def play_table(cycle: Signal, hz: float, t: Signal, phase: float = 0.0) -> Signal:
    """Read the one-cycle `cycle` at `hz` (phase in cycles), linear interpolation."""
    position = ((phase + hz * t) % 1.0) * TABLE_SIZE
    return np.interp(position, np.arange(TABLE_SIZE), cycle, period=TABLE_SIZE)


def saw_amplitude(k: int) -> float:
    return 1.0 / k


def square_amplitude(k: int) -> float:
    return 1.0 / k if k % 2 else 0.0


def filtered(
    amplitude: Callable[[int], float], f0: float, cutoff: float, order: int = 2
) -> Callable[[int], float]:
    """Harmonic amplitudes seen through a static Butterworth-shaped low-pass."""
    return lambda k: amplitude(k) / math.sqrt(1.0 + (k * f0 / cutoff) ** (2 * order))


def metal(t: Signal, freqs: Iterable[float]) -> Signal:
    """The TR-808's cymbal source: square waves at unrelated frequencies, summed.
    They are not band-limited on purpose: the folded partials add to the clang."""
    return sum(
        (np.sign(np.sin(2 * np.pi * f * t + 0.3 * i)) for i, f in enumerate(freqs)),
        np.zeros_like(t),
    )


def svf_lowpass(x: Signal, cutoff: Signal, damping: float) -> Signal:
    """A Chamberlin state-variable low-pass with a cutoff that moves sample by sample
    (the bass's filter sweep). Stable while the cutoff stays below RATE / 6."""
    tune = 2.0 * np.sin(np.pi * np.minimum(cutoff, RATE / 6) / RATE)
    low = band = 0.0
    out = np.empty_like(x)
    for i, (sample, f) in enumerate(zip(x.tolist(), tune.tolist(), strict=True)):
        low += f * band
        high = sample - low - damping * band
        band += f * high
        out[i] = low
    return out


def karplus_strong(name: str, f0: float, seconds: float, t60: float) -> Signal:
    """A plucked string (Karplus & Strong 1983) tuned exactly: the loop's two-point
    average adds half a sample of delay and a first-order all-pass supplies the
    fraction (Jaffe & Smith 1983), so the pitch is true rather than a few cents flat."""
    period = RATE / f0
    length = math.floor(period - 0.5)
    fraction = period - 0.5 - length
    if fraction < 0.1:  # the all-pass is best between 0.1 and 1.1 samples of delay
        length -= 1
        fraction += 1.0
    coef = (1.0 - fraction) / (1.0 + fraction)
    # Loss per trip round the loop for the fundamental to fall 60 dB in t60 seconds.
    loss = 10.0 ** (-3.0 / (t60 * f0))
    excite = lowpass(rng_for(name).uniform(-1.0, 1.0, length), 6000.0, 1)
    line = (excite - excite.mean()).tolist()  # no DC: it would never decay
    total = round(seconds * RATE)
    out = [0.0] * total
    previous = 0.0
    ap_in = ap_out = 0.0
    index = 0
    for n in range(total):
        current = line[index]
        out[n] = current
        averaged = loss * 0.5 * (current + previous)
        previous = current
        ap_out = coef * averaged + ap_in - coef * ap_out
        ap_in = averaged
        line[index] = ap_out
        index = index + 1 if index + 1 < length else 0
    return np.asarray(out)


def fm(carrier_hz: float, ratio: float, index: Signal, t: Signal) -> Signal:
    """Two-operator FM (Chowning 1973): a sine carrier, phase-modulated at
    `ratio` x its frequency by `index` (radians)."""
    return np.sin(2 * np.pi * carrier_hz * t + index * np.sin(2 * np.pi * ratio * carrier_hz * t))


def finish(x: Signal, fade_in: float = 0.0005, fade_out: float = 0.01) -> npt.NDArray[np.int16]:
    """Raised-cosine fades at both ends (so the file starts and ends at silence, no
    click), peak normalised to PEAK_DBFS, quantised to 16 bits."""
    x = np.array(x, dtype=np.float64)
    n_in, n_out = max(1, round(fade_in * RATE)), max(1, round(fade_out * RATE))
    x[:n_in] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(n_in) / n_in)
    x[-n_out:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, n_out + 1) / n_out)
    peak = float(np.max(np.abs(x)))
    x *= 10.0 ** (PEAK_DBFS / 20) / peak
    return np.round(x * 32767.0).astype(np.int16)


# -- the kit (GM channel 10) -------------------------------------------------------

HAT_FREQS: Final = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)  # TR-808 cymbal oscillators


def kick(t: Signal) -> Signal:
    """A thump with a knock: a sine falling fast from about 160 Hz to 50 Hz (read as a
    thump, not a "boing"), driven into saturation, whose harmonics (100-300 Hz) carry
    the beat on small speakers and a PA's mid cabinets where a bare 50 Hz sine is felt
    rather than heard; a short band of noise for the beater's knock."""
    hz = 50.0 + 110.0 * np.exp(-t / 0.03)
    body = sine(hz, t) * (0.35 * decay(t, 0.05) + 0.65 * decay(t, 0.32))
    knock = bandpass(noise("kick", t), 1200.0, 4500.0) * decay(t, 0.007)
    return np.tanh(2.6 * (body + 0.3 * knock))


def snare(t: Signal) -> Signal:
    hz = 185.0 * (1.0 + 0.25 * np.exp(-t / 0.012))
    tone = 0.6 * sine(hz, t) * decay(t, 0.05) + 0.3 * sine(hz * 1.78, t) * decay(t, 0.03)
    rattle = bandpass(noise("snare", t), 1500.0, 9000.0) * decay(t, 0.085)
    return tone + 1.4 * rattle


def clap(t: Signal) -> Signal:
    # Several hands a few ms apart, then the room: what makes a clap not a snare.
    hands = sum((decay(t, 0.004, start) for start in (0.0, 0.009, 0.019)), np.zeros_like(t))
    envelope = hands + 0.8 * decay(t, 0.12, 0.028)
    return bandpass(noise("clap", t), 900.0, 5000.0) * envelope


def hat(name: str, t: Signal, tau: float, cutoff: float) -> Signal:
    source = 0.6 * metal(t, [f * 1.6 for f in HAT_FREQS]) / len(HAT_FREQS) + 0.4 * noise(name, t)
    return highpass(source, cutoff, 3) * decay(t, tau) * rise(t, 0.0005)


def tom(name: str, t: Signal, hz: float, tau: float) -> Signal:
    sweep = hz * (1.0 + 0.35 * np.exp(-t / 0.05))
    body = sine(sweep, t) * decay(t, tau) + 0.2 * sine(sweep * 1.5, t) * decay(t, tau / 3)
    stick = bandpass(noise(name, t), 300.0, 3000.0) * decay(t, 0.015)
    return body + 0.35 * stick


def crash(t: Signal) -> Signal:
    source = 0.5 * metal(t, [f * 2.3 for f in HAT_FREQS]) / len(HAT_FREQS) + 0.5 * noise("crash", t)
    wash = bandpass(source, 3000.0, 14000.0)
    return wash * (0.3 * decay(t, 0.05) + 0.7 * decay(t, 0.45)) * rise(t, 0.001)


def ride(t: Signal) -> Signal:
    # A ride is a bell-like "ping" over a quiet wash.
    partials = ((612.0, 0.5), (1531.0, 0.35), (3020.0, 0.3), (4550.0, 0.25), (6210.0, 0.15))
    ping = sum((a * sine(f, t, 0.7 * i) for i, (f, a) in enumerate(partials)), np.zeros_like(t))
    wash = highpass(
        0.5 * metal(t, [f * 3.1 for f in HAT_FREQS]) / 6 + 0.5 * noise("ride", t), 6000.0, 2
    )
    return 0.5 * ping * decay(t, 0.35) + 0.6 * wash * decay(t, 0.5)


def side_stick(t: Signal) -> Signal:
    wood = 0.6 * sine(1650.0, t) * decay(t, 0.008) + 0.5 * sine(520.0, t) * decay(t, 0.02)
    return wood + 0.6 * highpass(noise("side stick", t), 2500.0) * decay(t, 0.003)


# -- hand percussion ---------------------------------------------------------------


def hand_drum(name: str, t: Signal, hz: float, tau: float) -> Signal:
    # A membrane's first overtone sits at ~1.59 x the fundamental (Bessel zeros).
    bend = hz * (1.0 + 0.06 * np.exp(-t / 0.02))
    skin = sine(bend, t) * decay(t, tau) + 0.25 * sine(bend * 1.59, t) * decay(t, tau / 3)
    slap = bandpass(noise(name, t), 1000.0, 6000.0) * decay(t, 0.005)
    return skin + 0.5 * slap


def cowbell(t: Signal) -> Signal:
    # The TR-808 cowbell: two square waves at 540 and 800 Hz through a band-pass.
    tone = sum(
        (play_table(table(f, square_amplitude), f, t) for f in (540.0, 800.0)), np.zeros_like(t)
    )
    return bandpass(tone, 450.0, 3000.0) * (0.6 * decay(t, 0.02) + 0.4 * decay(t, 0.12))


def tambourine(t: Signal) -> Signal:
    # Jingles hit a few ms after each other; each one rings at a high, inharmonic pitch.
    hits = sum(
        (w * decay(t, 0.03, s) for s, w in ((0.0, 1.0), (0.011, 0.7), (0.024, 0.5), (0.04, 0.3))),
        np.zeros_like(t),
    )
    jingles = sum(
        (sine(f, t, i) for i, f in enumerate((5200.0, 6700.0, 8300.0, 9800.0, 11400.0))),
        np.zeros_like(t),
    )
    shimmer = highpass(noise("tambourine", t), 5000.0, 3)
    return (shimmer + 0.15 * jingles) * hits * decay(t, 0.12)


def shaker(t: Signal) -> Signal:
    # Beads take a moment to hit the shell: a soft attack, unlike every other sound here.
    envelope = np.where(t < 0.012, rise(t, 0.012), decay(t, 0.04, 0.012))
    return bandpass(noise("shaker", t), 4000.0, 12000.0, 3) * envelope


def claves(t: Signal) -> Signal:
    return sine(2490.0, t) * decay(t, 0.03) + 0.15 * sine(6880.0, t) * decay(t, 0.01)


def triangle(t: Signal) -> Signal:
    # Partials of a free bar (ratios 1, 2.76, 5.40, 8.93): the triangle's shimmer.
    partials = ((1.0, 1.0, 0.6), (2.76, 0.6, 0.45), (5.40, 0.4, 0.35), (8.93, 0.25, 0.25))
    ring = sum(
        (a * sine(1180.0 * r, t, i) * decay(t, tau) for i, (r, a, tau) in enumerate(partials)),
        np.zeros_like(t),
    )
    strike = highpass(noise("triangle", t), 4000.0) * decay(t, 0.002)
    return ring + 0.5 * strike


def agogo(t: Signal) -> Signal:
    return fm(910.0, 1.41, 1.3 * decay(t, 0.05), t) * decay(t, 0.14)


@dataclass(frozen=True)
class Drum:
    note: int  # General MIDI drum note (channel 10)
    name: str
    seconds: float
    gain: float  # mix balance: every file peaks at -3 dBFS, bright sounds play softer
    make: Callable[[Signal], Signal]


KIT: Final = (
    Drum(36, "kick", 0.5, 1.0, kick),
    Drum(37, "side_stick", 0.15, 0.55, side_stick),
    Drum(38, "snare", 0.4, 0.85, snare),
    Drum(39, "clap", 0.4, 0.75, clap),
    Drum(42, "closed_hat", 0.15, 0.45, lambda t: hat("closed hat", t, 0.022, 7000.0)),
    Drum(45, "low_tom", 0.55, 0.8, lambda t: tom("low tom", t, 95.0, 0.22)),
    Drum(46, "open_hat", 0.6, 0.4, lambda t: hat("open hat", t, 0.2, 6500.0)),
    Drum(49, "crash", 0.95, 0.45, crash),
    Drum(50, "high_tom", 0.45, 0.75, lambda t: tom("high tom", t, 150.0, 0.16)),
    Drum(51, "ride", 0.9, 0.4, ride),
)

PERC: Final = (
    Drum(54, "tambourine", 0.35, 0.45, tambourine),
    Drum(56, "cowbell", 0.4, 0.45, cowbell),
    Drum(60, "bongo_hi", 0.25, 0.6, lambda t: hand_drum("bongo hi", t, 480.0, 0.07)),
    Drum(61, "bongo_lo", 0.3, 0.65, lambda t: hand_drum("bongo lo", t, 360.0, 0.09)),
    Drum(62, "conga_hi", 0.35, 0.7, lambda t: hand_drum("conga hi", t, 330.0, 0.13)),
    Drum(64, "conga_lo", 0.45, 0.75, lambda t: hand_drum("conga lo", t, 220.0, 0.18)),
    Drum(67, "agogo", 0.4, 0.5, agogo),
    Drum(70, "maracas", 0.2, 0.4, shaker),
    Drum(75, "claves", 0.2, 0.5, claves),
    Drum(81, "triangle", 0.95, 0.35, triangle),
)


# -- pitched sets ------------------------------------------------------------------


def bass(root: int, t: Signal) -> Signal:
    """Saw + square through a resonant low-pass whose cutoff falls after the attack
    (keyed to the pitch, so both zones sound alike): a plucked synth bass."""
    f0 = midi_hz(root)
    tone = 0.7 * play_table(table(f0, saw_amplitude), f0, t) + 0.3 * play_table(
        table(f0, square_amplitude), f0, t, 0.25
    )
    tone += 0.35 * sine(f0, t)  # a firm fundamental, so small speakers still carry the note
    cutoff = 2.2 * f0 + 2400.0 * np.exp(-t / 0.09)
    shaped = svf_lowpass(tone, cutoff, damping=0.9)
    return shaped * rise(t, 0.003) * (0.55 + 0.45 * decay(t, 0.25)) * decay(t, 2.5)


def keys(root: int, t: Signal) -> Signal:
    """An FM electric piano: a 1:1 pair for the warm body (its brightness fading as the
    note decays) and a 1:14 pair for the tine's short metallic ping."""
    f0 = midi_hz(root)
    body = fm(f0, 1.0, 1.6 * decay(t, 0.35) + 0.25, t) * decay(t, 0.9)
    tine = fm(f0, 14.0, 0.8 * decay(t, 0.03), t) * decay(t, 0.1)
    return (body + 0.3 * tine) * rise(t, 0.002)


def lead(root: int, t: Signal) -> Signal:
    """Three saws detuned by a few cents (they beat slowly against each other) and a
    square an octave down for weight, through a low-pass that opens on the attack and
    closes to a few harmonics as the note holds (the pitch-keyed sweep of a synth lead,
    not the static buzz of bare saws), settling to a sustain."""
    f0 = midi_hz(root)
    phases = rng_for(f"lead {root}").uniform(0.0, 1.0, 4)
    tone = np.zeros_like(t)
    for cents, phase in zip((-9.0, 0.0, 9.0), phases[:3], strict=True):
        hz = f0 * 2.0 ** (cents / 1200)
        tone += play_table(table(hz, filtered(saw_amplitude, hz, 6000.0)), hz, t, phase)
    sub = f0 / 2
    tone += 0.5 * play_table(table(sub, filtered(square_amplitude, sub, 6000.0)), sub, t, phases[3])
    cutoff = 2.5 * f0 + 4000.0 * np.exp(-t / 0.15)
    shaped = svf_lowpass(tone, cutoff, damping=1.0)
    return shaped * rise(t, 0.008) * (0.7 + 0.3 * decay(t, 0.25))


def pluck(root: int, t: Signal) -> Signal:
    """A Karplus-Strong string, ringing about 1.4 s to -60 dB whatever its pitch."""
    string = karplus_strong(f"pluck {root}", midi_hz(root), len(t) / RATE, t60=1.4)
    # Softly saturated: the burst that starts a string is all peak and little loudness,
    # so rounding it lets the pluck sit as loud as the lead without topping the mix.
    string = lowpass(string, 7000.0, 1)
    return np.tanh(2.5 * string / np.max(np.abs(string)))


def pad(root: int, t: Signal) -> Signal:
    """Five saws detuned over +-15 cents (a chorus, slowly swirling), filtered warm,
    with a slow attack so chords swell in."""
    f0 = midi_hz(root)
    phases = rng_for(f"pad {root}").uniform(0.0, 1.0, 5)
    tone = np.zeros_like(t)
    for cents, phase in zip((-15.0, -6.0, 0.0, 7.0, 14.0), phases, strict=True):
        hz = f0 * 2.0 ** (cents / 1200)
        tone += play_table(table(hz, filtered(saw_amplitude, hz, 1600.0)), hz, t, phase)
    return tone * rise(t, 0.45)


def bell(root: int, t: Signal) -> Signal:
    """Chowning's FM bell: an inharmonic 1:1.4 pair whose brightness dies away faster
    than its loudness, plus a faint octave partial for shimmer."""
    f0 = midi_hz(root)
    index = (3.0 if root < 96 else 2.0) * decay(t, 0.5)  # less at the top: no aliasing
    tone = fm(f0, 1.4, index, t) * decay(t, 0.8) + 0.2 * sine(2.0 * f0, t) * decay(t, 0.3)
    return tone * rise(t, 0.001)


@dataclass(frozen=True)
class Pitched:
    name: str
    roots: tuple[int, ...]  # one zone per root, an octave apart
    seconds: float
    gain: float  # mix balance
    sustain: bool  # holds a level until note-off (False: decays away by itself)
    release_ms: int  # the fade the player applies at note-off
    make: Callable[[int, Signal], Signal]
    fade_out: float  # the end of the file, faded: longer for sounds still ringing there


# Roots sit about a fifth above each track's lowest octave (TrackSpec.octave) and an
# octave above that, where harmony.py puts most of the notes.
PITCHED: Final = (
    Pitched("bass", (43, 55), 1.0, 1.0, True, 60, bass, 0.15),
    Pitched("keys", (67, 79), 1.5, 1.0, True, 150, keys, 0.2),
    Pitched("lead", (79, 91), 1.0, 1.1, True, 80, lead, 0.12),
    Pitched("pluck", (67, 79), 1.2, 1.0, False, 250, pluck, 0.2),
    Pitched("pad", (55, 67), 2.8, 1.1, True, 400, pad, 0.6),
    Pitched("bell", (91, 103), 1.6, 0.9, False, 600, bell, 0.3),
)


# -- output ------------------------------------------------------------------------


def write_wav(path: Path, samples: npt.NDArray[np.int16]) -> None:
    """16-bit mono PCM; the `wave` module writes no timestamp, so the bytes are stable."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.astype("<i2").tobytes())


def build(out_dir: Path) -> dict[str, Any]:
    """Write every sample and the manifest into `out_dir`; return the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sets: dict[str, Any] = {}
    # The kit a little under full level, the percussion well above its softer hits:
    # the kit's transients make the mix's peaks, the percussion sits beside it.
    for set_name, drums, gain in (("kit", KIT, 0.9), ("perc", PERC, 1.6)):
        notes: dict[str, Any] = {}
        for drum in drums:
            file = f"{set_name}_{drum.note}_{drum.name}.wav"
            write_wav(out_dir / file, finish(drum.make(times(drum.seconds)), fade_out=0.02))
            notes[str(drum.note)] = {"file": file, "name": drum.name, "gain": drum.gain}
        sets[set_name] = {"kind": "drums", "gain": gain, "notes": notes}
    for spec in PITCHED:
        zones = []
        for root in spec.roots:
            file = f"{spec.name}_{root}.wav"
            samples = finish(
                spec.make(root, times(spec.seconds)), fade_in=0.001, fade_out=spec.fade_out
            )
            write_wav(out_dir / file, samples)
            zones.append({"file": file, "root": root})
        sets[spec.name] = {
            "kind": "pitched",
            "gain": spec.gain,
            "loop": False,  # no loop points: every sample outlasts its track's notes
            "sustain": spec.sustain,
            "release_ms": spec.release_ms,
            "zones": zones,
        }
    manifest = {
        "format": MANIFEST_FORMAT,
        "generator": "sounds/make_sounds.py",
        "license": "CC0-1.0",
        "rate": RATE,
        "sets": sets,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (out_dir / "manifest.json").write_text(text, encoding="utf-8")
    return manifest


def manifest_files(manifest: dict[str, Any]) -> list[str]:
    """Every WAV file the manifest names."""
    files: list[str] = []
    for entry in manifest["sets"].values():
        if entry["kind"] == "drums":
            files += [hit["file"] for hit in entry["notes"].values()]
        else:
            files += [zone["file"] for zone in entry["zones"]]
    return files


def main(argv: list[str] | None = None) -> int:
    """Command line: regenerate the samples (beside this script unless --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out", type=Path, default=HERE, help="directory to write (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    manifest = build(args.out)
    made = set(manifest_files(manifest))
    total = sum((args.out / name).stat().st_size for name in made)
    count = len(manifest["sets"])
    print(f"{count} sample sets, {len(made)} files, {total / 1e6:.2f} MB in {args.out}")
    # Never delete in a directory we were pointed at; say what no longer belongs.
    for stale in sorted(p.name for p in args.out.glob("*.wav") if p.name not in made):
        print(f"warning: {stale} is not in the manifest any more; remove it", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
