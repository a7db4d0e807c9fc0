"""The billboard's sample library: the sets ``sounds/make_sounds.py`` generates,
read from ``sounds/manifest.json``, and the pure work of turning a sample into a note.

No mixer here (``billboard/sound.py`` plays what this prepares):

- a drum set ("kit", "perc") holds a file per General MIDI drum note; `drum_note`
  finds what plays a note the set lacks: a stand-in (a pedal hat plays the closed
  hat) or the nearest;
- a pitched set holds zones, each recorded at a root note; `nearest_zone` picks one
  and `resample` moves it to the note (Hermite interpolation, low-passed first when
  going up so high notes do not alias).
"""

from __future__ import annotations

import json
import math
import wave
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]

MANIFEST: Final = "manifest.json"
RELEASE_MS: Final = 30  # note-off fade when the manifest gives none

# General MIDI level 1 drum notes we have no file for → the notes that stand in for
# them, best first. Anything else falls back to the nearest note of the set.
GM_DRUM_ALIASES: Final[Mapping[int, tuple[int, ...]]] = {
    35: (36,),  # acoustic bass drum → kick
    40: (38,),  # electric snare → snare
    41: (45,),  # low floor tom → low tom
    43: (45,),  # high floor tom → low tom
    44: (42,),  # pedal hi-hat → closed hat
    47: (45, 50),  # low-mid tom
    48: (50, 45),  # hi-mid tom
    52: (49,),  # Chinese cymbal → crash
    53: (51,),  # ride bell → ride
    55: (49,),  # splash → crash
    57: (49,),  # crash 2 → crash
    58: (70, 54),  # vibraslap → a rattle
    59: (51,),  # ride 2 → ride
    63: (62,),  # open hi conga → hi conga
    65: (60,),  # high timbale → hi bongo
    66: (61,),  # low timbale → lo bongo
    68: (67,),  # low agogo → agogo
    69: (70,),  # cabasa → maracas
    73: (70,),  # short guiro → maracas
    74: (70,),  # long guiro → maracas
    76: (75,),  # hi wood block → claves
    77: (75,),  # low wood block → claves
    80: (81,),  # mute triangle → triangle
}


@dataclass(frozen=True, slots=True)
class Zone:
    """A pitched sample recorded at MIDI note `root`."""

    root: int
    samples: Samples


@dataclass(frozen=True, slots=True)
class DrumSample:
    samples: Samples
    gain: float = 1.0


@dataclass(frozen=True, slots=True)
class SampleSet:
    """One sample set of the manifest: drums by GM note, or pitched zones."""

    name: str
    kind: Literal["drums", "pitched"]
    rate: int  # the samples' sample rate (Hz)
    gain: float = 1.0
    release_ms: int = RELEASE_MS
    drums: Mapping[int, DrumSample] = field(default_factory=dict)
    zones: tuple[Zone, ...] = ()


def read_wav(path: Path) -> tuple[int, Samples]:
    """A 16-bit PCM WAV file as (rate, mono float32 samples in [-1, 1]); several
    channels are averaged. OSError when the file is missing or not 16-bit PCM."""
    try:
        with wave.open(str(path), "rb") as source:
            width, channels = source.getsampwidth(), source.getnchannels()
            rate, frames = source.getframerate(), source.readframes(source.getnframes())
    except (wave.Error, EOFError) as exc:
        raise OSError(f"{path}: not a readable WAV file ({exc})") from exc
    if width != 2:
        raise OSError(f"{path}: {8 * width}-bit samples; the billboard reads 16-bit PCM")
    pcm = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    if pcm.size == 0:
        raise OSError(f"{path}: no samples")
    return rate, pcm


def load_sample_sets(sounds_dir: Path) -> dict[str, SampleSet]:
    """Every sample set that ``sounds_dir/manifest.json`` lists, its WAV files read.
    OSError (with the path) when the manifest or a file it names cannot be read."""
    path = sounds_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        entries: Mapping[str, Any] = manifest["sets"]
    except (ValueError, KeyError, TypeError) as exc:
        raise OSError(f"{path}: not a sample manifest ({exc!r})") from exc
    sets: dict[str, SampleSet] = {}
    for name, entry in entries.items():
        try:
            sets[name] = _read_set(sounds_dir, name, entry)
        except (KeyError, TypeError, ValueError) as exc:
            raise OSError(f"{path}: sample set {name!r} is malformed ({exc!r})") from exc
    return sets


def _read_set(sounds_dir: Path, name: str, entry: Mapping[str, Any]) -> SampleSet:
    rates: set[int] = set()
    drums: dict[int, DrumSample] = {}
    zones: list[Zone] = []
    kind = entry["kind"]
    if kind == "drums":
        for note, hit in entry["notes"].items():
            rate, samples = read_wav(sounds_dir / hit["file"])
            rates.add(rate)
            drums[int(note)] = DrumSample(samples, float(hit.get("gain", 1.0)))
    elif kind == "pitched":
        for zone in entry["zones"]:
            rate, samples = read_wav(sounds_dir / zone["file"])
            rates.add(rate)
            zones.append(Zone(int(zone["root"]), samples))
        zones.sort(key=lambda z: z.root)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    if not drums and not zones:
        raise ValueError("no samples")
    if len(rates) != 1:
        raise ValueError(f"needs one sample rate, found {sorted(rates)}")
    return SampleSet(
        name=name,
        kind=kind,
        rate=rates.pop(),
        gain=float(entry.get("gain", 1.0)),
        release_ms=int(entry.get("release_ms", RELEASE_MS)),
        drums=drums,
        zones=tuple(zones),
    )


def drum_note(available: Collection[int], note: int) -> int | None:
    """The note of a drum set that plays `note`: itself, its GM stand-in, or the
    nearest the set has (the lower on a tie). None for an empty set."""
    if not available:
        return None
    if note in available:
        return note
    for alias in GM_DRUM_ALIASES.get(note, ()):
        if alias in available:
            return alias
    return min(available, key=lambda n: (abs(n - note), n))


def nearest_zone(zones: Sequence[Zone], note: int) -> Zone:
    """The zone whose root is nearest to `note`; on a tie the higher one, since
    resampling down cannot alias."""
    return min(zones, key=lambda z: (abs(note - z.root), -z.root))


def _lowpass(x: npt.NDArray[np.float64], cutoff: float) -> npt.NDArray[np.float64]:
    """Zero-phase low-pass at `cutoff` (a fraction of the sample rate, < 0.5) with a
    raised-cosine transition over its top fifth; zero-padded so nothing wraps round."""
    size = 1 << (len(x) + 256).bit_length()
    spectrum = np.fft.rfft(x, size)
    freq = np.fft.rfftfreq(size)
    knee = 0.8 * cutoff
    ramp = np.clip((freq - knee) / (cutoff - knee), 0.0, 1.0)
    spectrum *= 0.5 + 0.5 * np.cos(np.pi * ramp)
    return np.fft.irfft(spectrum, size)[: len(x)]


def resample(samples: Samples, step: float, max_frames: int | None = None) -> Samples:
    """`samples` read `step` source frames per output frame: step 2 sounds an octave
    higher and half as long, 0.5 an octave lower. Four-point Hermite interpolation;
    when stepping up, the source is first low-passed below the new Nyquist frequency,
    so high notes do not alias. At most `max_frames` come out (the cut is faded)."""
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"resampling step must be a positive number, not {step!r}")
    if samples.size == 0:
        return samples.astype(np.float32)
    frames = int((samples.size - 1) / step) + 1
    cut = max_frames is not None and frames > max_frames
    if max_frames is not None:
        frames = max(1, min(frames, max_frames))
    if step == 1.0:
        out64 = samples[:frames].astype(np.float64)
    else:
        source = samples.astype(np.float64)
        if step > 1.0:
            source = _lowpass(source, 0.45 / step)
        padded = np.concatenate(([0.0], source, [0.0, 0.0]))
        position = np.arange(frames, dtype=np.float64) * step
        index = position.astype(np.int64)
        t = position - index
        xm1, x0, x1, x2 = (padded[index + k] for k in range(4))
        # Catmull-Rom form of the cubic Hermite through x0 and x1.
        c1 = 0.5 * (x1 - xm1)
        c2 = xm1 - 2.5 * x0 + 2.0 * x1 - 0.5 * x2
        c3 = 0.5 * (x2 - xm1) + 1.5 * (x0 - x1)
        out64 = ((c3 * t + c2) * t + c1) * t + x0
    if cut:
        fade = min(frames, 441)  # 10 ms at 44.1 kHz: no click where the note is cut
        out64[-fade:] *= np.linspace(1.0, 0.0, fade)
    return out64.astype(np.float32)
