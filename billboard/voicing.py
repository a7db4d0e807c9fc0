"""How the billboard's speakers play the engine's notes: the rules the live mixer
(``billboard/sound.py``) and the offline render (``billboard/render.py``) share, so
what a night sounds like on the building and in its published recording cannot drift.

- A note's sound: a drum note plays its set's file for that note (or the stand-in
  `drum_note` finds), a pitched note the nearest zone resampled to it, cut at
  `MAX_VOICE_SECONDS`, panned, with what the track's reverb and delay sends give back
  for it as a second sound (``billboard/mix.py``; `PreparedSounds`, cached per track
  and note).
- Its loudness: velocity through the DLS curve, the set's and the sample's gain, the
  track's fader, and `MASTER_GAIN` for headroom (`voice_volume`).
- Voices: `VOICES_PER_TRACK` per track for the dry sounds, `mix.WET_VOICES` for the
  wet ones (a wet voice has no note-off: the room and the echoes ring out). A note
  restarted, or a hat choking its exclusive class, fades the old voice; a track that
  runs out steals its own oldest voice and keeps one in hand with a short fade
  (`start_voice`); a note-off fades a pitched voice over its set's release
  (`release_voices`); a panic fades them all (`silence`).

Pure: numpy, pedalboard and the sample library, no mixer and no clock. A voice is
anything of the `Voice` shape: the live mixer backs it with a pygame channel, the
render with an array.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from . import mix
from .engine.tracks import TrackSpec
from .kept import Kept
from .mix import Stereo
from .samples import Samples, SampleSet, drum_note, nearest_zone, resample

VOICES_PER_TRACK: Final = 6
# Eight tracks peaking together must not clip the mix: the busiest crowd's loudest
# moments stay under full scale (bench/musicality.py measures the true peak).
MASTER_GAIN: Final = 0.56
RETRIGGER_FADE_MS: Final = 20  # a note restarted (or a hat choked) fades its old voice
STEAL_FADE_MS: Final = 12  # the oldest voice's fade when a track's last voice is taken
PANIC_FADE_MS: Final = 10  # "at once", without the pop of a hard cut on a big PA
CACHE_BYTES: Final = 192 * 2**20  # prepared sounds kept, least recently used dropped
MAX_VOICE_SECONDS: Final = 6.0  # a very low note resampled longer is cut (and faded)

# GM2 "exclusive classes": a hit silences the others of its class (a closed hat chokes
# the open one, as a drummer's foot does).
EXCLUSIVE_CLASS: Final[Mapping[int, int]] = {
    42: 1,
    44: 1,
    46: 1,
    71: 2,
    72: 2,
    73: 3,
    74: 3,
    78: 4,
    79: 4,
    80: 5,
    81: 5,
}


def velocity_gain(velocity: int) -> float:
    """MIDI velocity 1–127 → amplitude: the DLS curve, 40·log10(v/127) dB, i.e. the
    square of v/127, which is how GM synths make soft notes sound soft."""
    v = min(max(velocity, 0), 127) / 127
    return v * v


def voice_volume(gain: float, velocity: int) -> float:
    """A voice's volume (0–1): the sound's gain (set × sample) at `velocity`, with the
    master headroom."""
    return min(1.0, MASTER_GAIN * gain * velocity_gain(velocity))


def exclusive_class(sample_set: SampleSet, note: int) -> int | None:
    """The class of drum hits `note` silences (None: it chokes nothing)."""
    return EXCLUSIVE_CLASS.get(note) if sample_set.kind == "drums" else None


def to_pcm16(audio: npt.NDArray[np.floating]) -> npt.NDArray[np.int16]:
    """Float samples (±1 full scale) as 16-bit PCM; anything beyond full scale is
    clipped to it."""
    pcm: npt.NDArray[np.int16] = np.clip(np.rint(audio * 32767.0), -32768, 32767).astype(np.int16)
    return pcm


# -- a note's sound ----------------------------------------------------------------

T = TypeVar("T")

# A prepared sound's cache key: ("dry", track, note) or ("wet", track, note, bpm).
Key = tuple[object, ...]


class PreparedSounds(Generic[T]):
    """Each note's sounds for a track, resampled to the output's `rate` and mixed
    (``billboard/mix.py``) once, then kept: the **dry** sound (the sample panned) and
    the **wet** one (what the track's reverb and delay sends return, None when it sends
    nothing). `make` turns prepared stereo samples (within ±1, as a 16-bit sound holds
    them) into what the output plays, and says how many bytes it holds. The least
    recently used are dropped beyond `limit` bytes (a sound still playing stays alive
    through its voice).

    Not thread-safe: the live mixer calls it under its lock, and computes a wet sound
    (the slow part, tens of ms) outside it with `compute_wet` and `make`, then keeps it
    with `put_wet`."""

    def __init__(
        self, rate: int, make: Callable[[Stereo], tuple[T, int]], limit: int = CACHE_BYTES
    ) -> None:
        self.rate = rate
        self._make = make
        self._kept: Kept[Key, T | None] = Kept(limit)

    def get(self, spec: TrackSpec, sample_set: SampleSet, note: int) -> tuple[T, float]:
        """The dry sound of `note` on `spec`'s track (playing `sample_set`), and its
        gain: the set's × the sample's × the track's fader."""
        key = ("dry", spec.name, note)
        kept = self._kept.find(key)
        if kept is None:
            mixed = mix.dry(self.mono(sample_set, note), _mix(spec, sample_set, note))
            kept = (self._kept.put(key, *self._make(np.clip(mixed, -1.0, 1.0))),)
        assert kept[0] is not None  # a dry sound is never None
        return kept[0], sample_gain(sample_set, note) * mix.gain(spec)

    def mono(self, sample_set: SampleSet, note: int) -> Samples:
        """`note`'s sample on `sample_set` at the output's rate: a drum's file, or the
        nearest zone moved to the note, cut at `MAX_VOICE_SECONDS`. Thread-safe."""
        if sample_set.kind == "drums":
            resolved = drum_note(sample_set.drums, note)
            assert resolved is not None  # the sample library refuses an empty set
            samples, step = sample_set.drums[resolved].samples, 1.0
        else:
            zone = nearest_zone(sample_set.zones, note)
            samples, step = zone.samples, 2.0 ** ((note - zone.root) / 12)
        return resample(
            samples,
            step * sample_set.rate / self.rate,  # the output may run at another rate
            max_frames=int(MAX_VOICE_SECONDS * self.rate),
        )

    @staticmethod
    def wet_key(spec: TrackSpec, note: int, bpm: float) -> Key:
        """Where `note`'s wet sound is kept: the delay follows the tempo, the reverb
        does not."""
        return ("wet", spec.name, note, round(bpm, 2) if spec.delay > 0 else 0.0)

    def cached_wet(self, key: Key) -> tuple[bool, T | None]:
        """(known, the wet sound): known is False until it has been computed."""
        kept = self._kept.find(key)
        return (False, None) if kept is None else (True, kept[0])

    def compute_wet(
        self, spec: TrackSpec, sample_set: SampleSet, note: int, bpm: float
    ) -> Stereo | None:
        """What the track's sends return for `note` at `bpm` (the slow part: call it
        outside any lock). Thread-safe."""
        track_mix = _mix(spec, sample_set, note)
        if not mix.sends(track_mix):
            return None
        frames = None
        if sample_set.kind != "drums":  # a drum rings out; a pitched note is cut
            frames = mix.note_frames(spec.length, bpm, sample_set.release_ms, self.rate)
        return mix.wet(self.mono(sample_set, note), track_mix, self.rate, bpm, frames)

    def make(self, stereo: Stereo | None) -> tuple[T | None, int]:
        """A computed wet sound as the output plays it, and its bytes. Thread-safe."""
        if stereo is None:
            return None, 0
        return self._make(np.clip(stereo, -1.0, 1.0))

    def put_wet(self, key: Key, made: tuple[T | None, int]) -> T | None:
        """Keep a wet sound `make` made (None: the track sends nothing); what plays it."""
        return self._kept.put(key, *made)

    def wet(self, spec: TrackSpec, sample_set: SampleSet, note: int, bpm: float) -> T | None:
        """The wet sound of `note`, computed now if it is not kept (the offline render:
        it has the time)."""
        key = self.wet_key(spec, note, bpm)
        known, sound = self.cached_wet(key)
        if known:
            return sound
        return self.put_wet(key, self.make(self.compute_wet(spec, sample_set, note, bpm)))

    def clear(self) -> None:
        self._kept.clear()


def _mix(spec: TrackSpec, sample_set: SampleSet, note: int) -> TrackSpec:
    """`spec`'s mix for `note`: a kit's drums spread round the track's pan."""
    drum = drum_note(sample_set.drums, note) if sample_set.kind == "drums" else None
    return mix.placed(spec, drum)


def sample_gain(sample_set: SampleSet, note: int) -> float:
    """The set's gain × the gain of the drum sample that plays `note`."""
    if sample_set.kind != "drums":
        return sample_set.gain
    resolved = drum_note(sample_set.drums, note)
    return sample_set.gain * (sample_set.drums[resolved].gain if resolved is not None else 1.0)


# -- voices ------------------------------------------------------------------------


class Voice(Protocol):
    """One voice of a track's pool, and the note it was last given."""

    note: int  # -1: none
    exclusive: int | None
    started: int  # play order: the oldest voice is stolen first
    released: bool  # note-off given (fading or done): first to be reused

    def busy(self) -> bool:
        """Sounding now (a fade not yet over counts)."""
        ...

    def fade(self, ms: int) -> None:
        """Fade out to silence over `ms`, then stop; a fade already under way goes on."""
        ...

    def stop(self) -> None:
        """Stop at once."""
        ...


V = TypeVar("V", bound=Voice)


def start_voice(
    pool: Sequence[V], note: int, exclusive: int | None, order: int, play: Callable[[V], None]
) -> V:
    """Give `note` a voice of `pool` and `play` it there; the voice it got.

    The same note still sounding (or a hit of its exclusive class) fades out first. A
    free voice is used if there is one; otherwise the oldest is stolen, preferring one
    already fading out. When that took the last voice, the oldest other fades out now,
    so the next note finds a free voice instead of cutting one off with a click."""
    for voice in pool:
        same = voice.note == note or (exclusive is not None and voice.exclusive == exclusive)
        if same and not voice.released and voice.busy():
            voice.fade(RETRIGGER_FADE_MS)
            voice.released = True
    free = [v for v in pool if not v.busy()]
    if free:
        chosen = free[0]
    else:
        chosen = min(pool, key=lambda v: (not v.released, v.started))
        chosen.stop()  # also ends a fade, which would override the new note's volume
    chosen.note, chosen.exclusive, chosen.started, chosen.released = note, exclusive, order, False
    play(chosen)
    if not any(v.released or not v.busy() for v in pool):
        oldest = min(pool, key=lambda v: v.started)
        if oldest is not chosen:
            oldest.fade(STEAL_FADE_MS)
            oldest.released = True
    return chosen


def release_voices(pool: Iterable[Voice], sample_set: SampleSet, note: int) -> None:
    """A note-off: `note`'s voices fade over the set's release (none: stop). Drums ring
    out: a drum has no note-off."""
    if sample_set.kind == "drums":
        return
    for voice in pool:
        if voice.note == note and not voice.released:
            voice.released = True
            if voice.busy():
                if sample_set.release_ms > 0:
                    voice.fade(sample_set.release_ms)
                else:
                    voice.stop()


def silence(voices: Iterable[Voice]) -> None:
    """A panic: every voice fades out at once (`PANIC_FADE_MS`) and is free."""
    for voice in voices:
        if voice.busy():
            voice.fade(PANIC_FADE_MS)
        voice.released = True
        voice.note = -1


# -- a voice backed by an array ------------------------------------------------------


@dataclass(slots=True)
class FrameClock:
    """Where in the output the note being played starts (frames at the output's rate),
    shared by all the voices of an offline render or a phone mix."""

    frame: int = 0


@dataclass(slots=True, eq=False)
class ArrayVoice:
    """A `Voice` with no mixer behind it (the offline render's, the phone mix's): the
    sound it plays, from frame `at` until `end` (its own end, or where a fade or a stop
    cut it), fading from `fade_from` over `fade_frames`."""

    now: FrameClock
    rate: int
    note: int = -1
    exclusive: int | None = None
    started: int = 0
    released: bool = True
    sound: npt.NDArray[np.float32] | None = None
    volume: float = 0.0
    at: int = 0
    end: int = 0
    fade_from: int = -1
    fade_frames: int = 1

    def busy(self) -> bool:
        return self.sound is not None and self.now.frame < self.end

    def fade(self, ms: int) -> None:
        if not self.busy() or self.fade_from >= 0:
            return  # over, or fading already: that fade goes on, as on the mixer
        self.fade_from = self.now.frame
        self.fade_frames = max(1, round(ms * self.rate / 1000))
        self.end = min(self.end, self.fade_from + self.fade_frames)

    def stop(self) -> None:
        if self.busy():
            self.end = self.now.frame
