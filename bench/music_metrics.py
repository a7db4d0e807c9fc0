"""What the music sounds like, in numbers: pure measures over a session's notes (and,
given its rendered mix, over the audio), for ``bench/musicality.py``.

Everything here is read from the notes the engine played (`NoteOn`/`NoteOff` with
their grid `step`), so a measure means the same for any version of the engine:

- **kick on one**: of the bars in which a caller pressed a key, the share with a kick
  (GM note 36 on the drum channel) starting on the bar's first 16th;
- **rub / tritone steps**: of the 16th steps, the share where two pitched notes that
  sound together are a semitone apart (interval class 1: a minor second, or its
  inversion a major seventh) / a tritone apart (interval class 6);
- **sounding at once**: notes (drums included) sounding at each step, mean and max;
  a note sounds from its step to its note-off's step;
- **onsets**: the share of steps where a note starts, and notes started per second;
- **registers** and **velocities** per track (pitched tracks: not the drum channel),
  and velocities inside a bar (a fading loop's notes are quieter, but all alike);
- **in key**: pitched notes whose pitch class is in the key's scale;
- **bars with nobody playing**: whole bars (in the window) without a press, and the
  share of them that have both a kick and a bass note;
- **timing behind the kick**: on steps with a kick (the grid's anchor, never
  humanised), how long after it the other notes of the step start: the median, and the
  share within 0–5 ms (a press heard at once, within the grace after its step, is later).

The audio measures take a float stereo array (frames × 2, full scale 1.0): integrated
loudness (ITU-R BS.1770 through pyloudnorm), true peak (4× oversampled, as BS.1770-4
asks), clipped samples, the correlation of left and right, and the spread of the
short-term (3 s) loudness.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

DRUM_CHANNEL = 9
KICK = 36
STEPS_PER_BAR = 16


@dataclass(frozen=True)
class Played:
    """One note as it sounded: from `step` (at `time`) to `end_step`."""

    time: float
    step: int
    end_step: int
    track: str
    channel: int
    note: int
    velocity: int

    @property
    def pitched(self) -> bool:
        return self.channel != DRUM_CHANNEL


def pair(notes: Iterable[Any]) -> list[Played]:
    """The notes as `Played`, each note-on matched with the next note-off of the same
    track, channel and note (first in, first out); a note-on never ended lasts a bar."""
    open_: dict[tuple[str, int, int], list[Any]] = defaultdict(list)
    ended: list[tuple[Any, int]] = []
    for n in notes:
        key = (n.track, n.channel, n.note)
        if hasattr(n, "velocity"):
            open_[key].append(n)
        elif open_[key]:
            ended.append((open_[key].pop(0), n.step))
    for waiting in open_.values():
        ended.extend((on, on.step + STEPS_PER_BAR) for on in waiting)
    played = [
        Played(on.time, on.step, max(end, on.step + 1), on.track, on.channel, on.note, on.velocity)
        for on, end in ended
    ]
    played.sort(key=lambda p: (p.step, p.time))
    return played


def sounding_by_step(played: Sequence[Played], first: int, last: int) -> list[list[Played]]:
    """For each step from `first` to `last` (inclusive), the notes sounding on it."""
    steps: list[list[Played]] = [[] for _ in range(last - first + 1)]
    for p in played:
        for s in range(max(p.step, first), min(p.end_step, last + 1)):
            steps[s - first].append(p)
    return steps


def _interval_classes(pitches: Iterable[int]) -> set[int]:
    classes = sorted({p % 12 for p in pitches})
    out = set()
    for i, a in enumerate(classes):
        for b in classes[i + 1 :]:
            d = (b - a) % 12
            out.add(min(d, 12 - d))
    return out


def note_measures(
    played: Sequence[Played],
    press_steps: Iterable[int],
    first: int,
    last: int,
    scale_classes: Iterable[int],
    seconds: float,
) -> dict[str, Any]:
    """The note measures (the module's docstring) over steps `first`..`last`;
    `press_steps` are the steps at which callers pressed keys."""
    window = [p for p in played if first <= p.step <= last]
    steps = sounding_by_step(played, first, last)
    n_steps = len(steps)
    pitched_steps = [[p.note for p in s if p.pitched] for s in steps]
    classes = [_interval_classes(s) for s in pitched_steps]
    rub = sum(1 for c in classes if 1 in c)
    tritone = sum(1 for c in classes if 6 in c)
    at_once = [len(s) for s in steps]
    onset_steps = {p.step for p in window}

    # Whole bars only: a bar the window cuts (the crowd's first step mid-bar) would miss
    # the notes of its own downbeat.
    bars = range(-(-first // STEPS_PER_BAR), (last + 1) // STEPS_PER_BAR)
    pressed_bars = {s // STEPS_PER_BAR for s in press_steps if first <= s <= last}
    kick_one = {
        p.step // STEPS_PER_BAR
        for p in window
        if p.channel == DRUM_CHANNEL and p.note == KICK and p.step % STEPS_PER_BAR == 0
    }
    kicks = {
        p.step // STEPS_PER_BAR for p in window if p.channel == DRUM_CHANNEL and p.note == KICK
    }
    bass = {p.step // STEPS_PER_BAR for p in window if p.track == "bass"}
    empty = [b for b in bars if b not in pressed_bars]
    grooving = [b for b in empty if b in kicks and b in bass]

    by_track: dict[str, list[Played]] = defaultdict(list)
    for p in window:
        by_track[p.track].append(p)
    registers = {
        track: [min(p.note for p in ps), max(p.note for p in ps)]
        for track, ps in sorted(by_track.items())
        if ps[0].pitched
    }
    velocities = {
        track: len({p.velocity for p in ps})
        for track, ps in sorted(by_track.items())
        if ps[0].pitched
    }
    # Dynamics inside a bar: per pitched track, the median over its bars with 4 notes
    # or more of how many velocities the bar holds (a fading loop's notes share one).
    bar_velocities = {}
    for track, ps in sorted(by_track.items()):
        if not ps[0].pitched:
            continue
        per_bar: dict[int, list[int]] = defaultdict(list)
        for p in ps:
            per_bar[p.step // STEPS_PER_BAR].append(p.velocity)
        counts = sorted(len(set(v)) for v in per_bar.values() if len(v) >= 4)
        if counts:
            bar_velocities[track] = counts[len(counts) // 2]
    scale = set(scale_classes)
    pitched = [p for p in window if p.pitched]
    kick_at = {p.step: p.time for p in window if p.channel == DRUM_CHANNEL and p.note == KICK}
    behind = sorted(
        1000 * (p.time - kick_at[p.step])
        for p in window
        if p.step in kick_at and not (p.channel == DRUM_CHANNEL and p.note == KICK)
    )
    return {
        "steps": n_steps,
        "notes": len(window),
        "notes_per_s": len(window) / seconds if seconds > 0 else 0.0,
        "kick_on_one_pct": _pct(len(pressed_bars & kick_one), len(pressed_bars)),
        "pressed_bars": len(pressed_bars),
        "rub_steps_pct": _pct(rub, n_steps),
        "tritone_steps_pct": _pct(tritone, n_steps),
        "sounding_mean": sum(at_once) / n_steps if n_steps else 0.0,
        "sounding_max": max(at_once, default=0),
        "onset_steps_pct": _pct(len(onset_steps), n_steps),
        "registers": registers,
        "velocities": velocities,
        "bar_velocities": bar_velocities,
        "bar_velocities_min": min(bar_velocities.values(), default=0),
        "in_key_pct": _pct(sum(1 for p in pitched if p.note % 12 in scale), len(pitched)),
        "empty_bars": len(empty),
        "empty_bars_grooving_pct": _pct(len(grooving), len(empty)),
        "behind_kick_ms_median": behind[len(behind) // 2] if behind else None,
        "behind_kick_within_5ms_pct": _pct(sum(1 for b in behind if -0.01 <= b <= 5), len(behind)),
    }


def _pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


# -- audio ---------------------------------------------------------------------------

Audio = npt.NDArray[np.float32]


def audio_measures(audio: Audio, rate: int) -> dict[str, Any]:
    """Loudness, peaks and stereo of a float array (frames × channels, 1.0 = full
    scale), as the module's docstring says."""
    import pyloudnorm  # type: ignore[import-untyped]
    from scipy.signal import resample_poly  # type: ignore[import-untyped]

    stereo = audio if audio.ndim == 2 else audio[:, None]
    meter = pyloudnorm.Meter(rate)
    integrated = float(meter.integrated_loudness(stereo.astype(np.float64)))
    oversampled = resample_poly(stereo.astype(np.float64), 4, 1, axis=0)
    true_peak = float(np.max(np.abs(oversampled))) if oversampled.size else 0.0
    left, right = stereo[:, 0], stereo[:, -1]
    if np.std(left) > 0 and np.std(right) > 0:
        correlation = float(np.corrcoef(left, right)[0, 1])
    else:
        correlation = 1.0
    short = _short_term(stereo, rate, meter)
    return {
        "lufs": integrated,
        "true_peak_dbtp": 20 * math.log10(true_peak) if true_peak > 0 else -math.inf,
        "clipped": int(np.count_nonzero(np.abs(stereo) >= 1.0)),
        "lr_correlation": correlation,
        "short_term_spread_db": (
            float(np.percentile(short, 95) - np.percentile(short, 10)) if len(short) else 0.0
        ),
    }


def _short_term(stereo: npt.NDArray[Any], rate: int, meter: Any) -> list[float]:
    """Loudness of each 3 s window, a second apart, above the -70 LUFS gate."""
    window, hop = 3 * rate, rate
    out = []
    for start in range(0, max(0, len(stereo) - window) + 1, hop):
        block = stereo[start : start + window].astype(np.float64)
        value = float(meter.integrated_loudness(block))
        if value > -70:
            out.append(value)
    return out


def summary(measures: Mapping[str, Any]) -> dict[str, str]:
    """The headline measures as short strings, for a report's table."""

    def num(key: str, fmt: str) -> str:
        value = measures.get(key)
        return "—" if value is None else format(value, fmt)

    regs = measures.get("registers", {})
    vel = measures.get("velocities", {})
    return {
        "kick on beat 1": num("kick_on_one_pct", ".0f") + " %",
        "semitone rub steps": num("rub_steps_pct", ".0f") + " %",
        "tritone steps": num("tritone_steps_pct", ".0f") + " %",
        "notes at once (mean / max)": (
            f"{num('sounding_mean', '.1f')} / {measures.get('sounding_max', '—')}"
        ),
        "steps with an onset": num("onset_steps_pct", ".0f") + " %",
        "notes a second": num("notes_per_s", ".1f"),
        "registers": " ".join(f"{t} {lo}–{hi}" for t, (lo, hi) in regs.items()) or "—",
        "velocities per pitched track (min)": str(min(vel.values(), default=0)),
        "velocities in a bar (median, min over tracks)": str(
            min(measures.get("bar_velocities", {}).values(), default=0)
        ),
        "in key": num("in_key_pct", ".1f") + " %",
        "bars nobody plays with beat + bass": (
            f"{num('empty_bars_grooving_pct', '.0f')} % of {measures.get('empty_bars', 0)}"
        ),
        "timing behind the kick (median / within 5 ms)": (
            f"{num('behind_kick_ms_median', '.1f')} ms / "
            f"{num('behind_kick_within_5ms_pct', '.0f')} %"
        ),
        "loudness": num("lufs", ".1f") + " LUFS",
        "true peak": num("true_peak_dbtp", ".1f") + " dBTP",
        "L/R correlation": num("lr_correlation", ".2f"),
        "short-term loudness spread": num("short_term_spread_db", ".1f") + " dB",
        "master limiter at work (time / most)": (
            f"{num('limiter_pct', '.1f')} % / {num('limiter_most_db', '.1f')} dB"
        ),
    }
