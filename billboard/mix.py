"""The speakers' mix: where each track sits between the speakers, how loud, and how
much of it goes to the reverb and the delay — the rules the live mixer
(``billboard/sound.py``) and the offline render (``billboard/render.py``) share.

pygame's mixer has no buses: it sums its channels and nothing can process the sum. So
the mix is made per note, where it can be: a note's **dry** sound is the sample panned
between left and right (`speakers`, a balance law: the centre plays at full level on
both), and its **wet** sound is what the reverb and the delay give back for that note
(`wet`), played on a voice of its own so the echoes and the room outlive the note-off
that fades the dry voice. Reverb and delay are linear, so the wet voices of all notes
add up to what one send bus would return, as long as a voice is not stolen — a track
has `WET_VOICES` of them, and its oldest tail gives way to the newest.

The effects are pedalboard's (JUCE's reverb, a tempo-synced delay: a dotted 8th on the
left, a quarter on the right), not hand-written DSP. A note's wet sound is the reverb
and delay of the dry sound cut to the track's note length, so a long sample does not
ring on in the reverb after the note ended.

The render's master bus has what the live one cannot: a true-peak brick-wall limiter
(`master`), so a published night never clips. Live, the same gain staging keeps the
sum under full scale (the render reports how often its limiter had work to do), and
the venue's system processor limits the PA as it always does.

Pure: numpy and pedalboard; no mixer, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import numpy.typing as npt
from pedalboard import BrickwallLimiter, Delay, Reverb

from .engine.tracks import TrackSpec

Stereo = npt.NDArray[np.float32]  # (frames, 2): left, right

WET_VOICES: Final = 3  # per track: tails that overlap before the oldest gives way
WET_MAX_SECONDS: Final = 3.0  # a tail is cut (faded) here
WET_FLOOR: Final = 10 ** (-60 / 20)  # a tail ends where it stays under -60 dBFS
FEEDBACK: Final = 0.3  # each echo -10.5 dB under the one before
REVERB_ROOM: Final = 0.55  # a mid-sized hall: about 1.5 s to fade
REVERB_DAMPING: Final = 0.5
CEILING_DB: Final = -1.5  # the master limiter's: true peaks stay under -1 dBTP


# A kit spread as the audience sees a drummer: hats and ride right of the kick and
# snare, toms from high (right) to low (left), the crash left. GM drum notes.
KIT_SPREAD: Final = {42: 0.3, 44: 0.3, 46: 0.3, 51: 0.4, 49: -0.4, 50: 0.25, 45: -0.25}


def placed(mix: TrackSpec, drum: int | None) -> TrackSpec:
    """A track's mix for one drum of its kit (None: a pitched note), spread round the
    track's pan."""
    if drum is None or drum not in KIT_SPREAD:
        return mix
    return replace(mix, pan=max(-1.0, min(1.0, mix.pan + KIT_SPREAD[drum])))


def speakers(mix: TrackSpec) -> tuple[float, float]:
    """The (left, right) gains of a track's pan: a balance control, so a track in the
    centre is as loud as a mono mix plays it, and one panned right keeps its full level
    on the right and less on the left."""
    pan = min(1.0, max(-1.0, mix.pan))
    return min(1.0, 1.0 - pan), min(1.0, 1.0 + pan)


def gain(mix: TrackSpec) -> float:
    """A track's fader as an amplitude (0 dB or less: a fader turns down)."""
    return float(10 ** (min(0.0, mix.gain_db) / 20))


def sends(mix: TrackSpec) -> bool:
    return mix.reverb > 0 or mix.delay > 0


def dry(mono: npt.NDArray[np.float32], mix: TrackSpec) -> Stereo:
    """A note's sample as it leaves the track: panned between the speakers."""
    left, right = speakers(mix)
    out = np.empty((len(mono), 2), dtype=np.float32)
    out[:, 0] = mono * np.float32(left)
    out[:, 1] = mono * np.float32(right)
    return out


def step_seconds(bpm: float) -> float:
    """A 16th note at `bpm`."""
    return 60.0 / max(1.0, bpm) / 4


def wet(
    mono: npt.NDArray[np.float32],
    mix: TrackSpec,
    rate: int,
    bpm: float,
    note_frames: int | None,
) -> Stereo | None:
    """What the reverb and delay return for one note (None: the track sends nothing):
    the dry sound, cut to `note_frames` with a short fade (None: the whole sound, as a
    drum rings out), through each send. The delay echoes a dotted 8th later on the left
    and a quarter later on the right, then again at each repeat, quieter by `FEEDBACK`.
    Cut where it has faded under -60 dBFS, and at `WET_MAX_SECONDS`."""
    if not sends(mix) or len(mono) == 0:
        return None
    source = np.array(mono[: note_frames or len(mono)], dtype=np.float32)
    fade = min(len(source), max(1, rate // 100))  # 10 ms: the cut does not click
    source[len(source) - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    pan_l, pan_r = speakers(mix)
    frames = len(source) + int(WET_MAX_SECONDS * rate)
    feed = np.zeros((2, frames), dtype=np.float32)  # pedalboard: channels first
    feed[0, : len(source)] = source * np.float32(pan_l)
    feed[1, : len(source)] = source * np.float32(pan_r)
    out = np.zeros((2, frames), dtype=np.float32)
    if mix.reverb > 0:
        room = Reverb(
            room_size=REVERB_ROOM,
            damping=REVERB_DAMPING,
            wet_level=1.0,
            dry_level=0.0,
            width=1.0,
        )
        out += np.float32(mix.reverb) * room(feed, rate)
    if mix.delay > 0:
        step = step_seconds(bpm)
        for channel, steps in ((0, 3), (1, 4)):
            echo = Delay(delay_seconds=steps * step, feedback=FEEDBACK, mix=1.0)
            out[channel] += np.float32(mix.delay) * echo(feed[channel : channel + 1], rate)[0]
    loud = np.flatnonzero(np.max(np.abs(out), axis=0) > WET_FLOOR)
    if len(loud) == 0:
        return None
    end = int(loud[-1]) + 1
    tail: Stereo = np.ascontiguousarray(out[:, :end].T)
    if end == frames:  # still sounding at the cap: fade the last 50 ms
        last = min(end, max(1, rate // 20))
        tail[end - last :] *= np.linspace(1.0, 0.0, last, dtype=np.float32)[:, np.newaxis]
    return tail


def note_frames(length_steps: int, bpm: float, release_ms: int, rate: int) -> int:
    """A pitched note's frames: its length in 16ths at `bpm` and its release."""
    return max(1, math.ceil((length_steps * step_seconds(bpm) + release_ms / 1000) * rate))


@dataclass(frozen=True, slots=True)
class Limited:
    """The master's output, and how much work its limiter did: the share of 10 ms
    blocks turned down by more than 0.5 dB, and the most it took off (dB)."""

    audio: Stereo
    blocks_pct: float
    most_db: float


def master(audio: Stereo, rate: int) -> Limited:
    """The render's master bus: a true-peak brick-wall limiter with its ceiling at
    `CEILING_DB` (4× oversampled detection, look-ahead; pedalboard compensates its
    delay, so the output lines up with the input)."""
    if len(audio) == 0:
        return Limited(audio, 0.0, 0.0)
    limiter = BrickwallLimiter(ceiling_db=CEILING_DB, true_peak=True)
    out = limiter(np.ascontiguousarray(audio.T), rate).T.astype(np.float32)
    block = max(1, rate // 100)
    whole = len(audio) // block * block
    if whole == 0:
        return Limited(np.ascontiguousarray(out), 0.0, 0.0)
    peak_in = np.abs(audio[:whole]).reshape(-1, block * 2).max(axis=1)
    peak_out = np.abs(out[:whole]).reshape(-1, block * 2).max(axis=1)
    sounding = peak_in > 1e-4
    ratio = np.ones_like(peak_in)
    ratio[sounding] = peak_out[sounding] / peak_in[sounding]
    reduction = -20 * np.log10(np.maximum(ratio, 1e-6))
    worked = float(np.count_nonzero(reduction[sounding] > 0.5))
    share = 100 * worked / max(1, int(np.count_nonzero(sounding)))
    return Limited(np.ascontiguousarray(out), share, float(max(0.0, reduction.max())))
