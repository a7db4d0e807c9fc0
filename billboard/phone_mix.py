"""The music down the phone line: the speakers' notes mixed again for a phone's
earpiece, 20 ms at a time — 160 samples of 8 kHz mono, as 16-bit PCM and as G.711
μ-law, the frames Twilio Media Streams and RTP carry.

Rendered once, sent to many: each 20 ms the mixer makes **one shared mix** (every
track at its level) and **one mix per track** for whoever holds it, the same mix with
that track `OWN_BOOST_DB` louder. A caller's frame is one of those, unless a cue is
playing for them (``billboard/phone_cues.py``): then theirs alone is made from their
mix with the cue on top (`PhoneFrame.for_caller`).

- The same notes as the speakers (`NoteSink`: `note_on`, `note_off`, `panic`), the
  same samples and voicing rules (``billboard/voicing.py``: voices per track,
  stealing, chokes, releases, velocity curve, set and sample gains, track faders),
  but dry and mono: the sends' reverb and delay blur music on an 8 kHz earpiece, and
  a phone has one speaker (the pan is dropped, not folded: a centred track keeps its
  level). Each note starts on its own sample within the frame.
- Cheap: a note's sound is made once — resampled straight from the library to 8 kHz
  at its pitch and band-limited to the phone's 300–3,400 Hz (`BAND_HZ`) — and kept;
  a frame is then slices added up. Band-limiting each note is band-limiting the sum
  (the filter is linear); only the fades of cut voices add a little splatter.
- Levelled for an earpiece: a slow gain (1 s) brings a mix to `TARGET_DBFS` RMS (−20
  dBFS, about 6 dB over the ITU-T P.56 reference speech level of −26 dBov, because
  music heard against a room's noise wants it, and 17 dB under the ceiling for its
  peaks), at most `MAX_GAIN_DB` up, and a peak limiter holds every sample under
  `CEILING_DBFS` (−3 dBFS: μ-law clips at −0.2 dBFS, and a trunk may transcode).
- Deterministic: the same notes (and cues) give the same bytes.

Pure: numpy and the relay's G.711 encoder; no mixer, no clock (the caller passes
`now`), no I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from relay.gateways.dtmf import ulaw_encode

from .engine.events import NoteOff, NoteOn
from .engine.tracks import TrackSpec
from .kept import Kept
from .mix import gain as fader
from .phone_cues import CUE_SOUNDS, Cue
from .samples import SampleSet
from .voicing import (
    VOICES_PER_TRACK,
    ArrayVoice,
    FrameClock,
    PreparedSounds,
    exclusive_class,
    release_voices,
    sample_gain,
    silence,
    start_voice,
    voice_volume,
)

Mono = npt.NDArray[np.float32]

RATE: Final = 8000
FRAME: Final = 160  # 20 ms
BAND_HZ: Final = (300.0, 3400.0)
EDGE_HZ: Final = (200.0, 3700.0)  # the filter's raised-cosine skirts end here
OWN_BOOST_DB: Final = 6.0
TARGET_DBFS: Final = -20.0
CEILING_DBFS: Final = -3.0
MAX_GAIN_DB: Final = 12.0
LEVEL_SECONDS: Final = 1.0  # the levelling's time constant
GATE_DBFS: Final = -60.0  # quieter frames leave the levelling where it is
RISE_DB_PER_FRAME: Final = 0.25  # after a peak, the gain comes back over ~1 s
CUE_DUCK: Final = 0.5  # the music under a cue: −6 dB
SOUNDS_BYTES: Final = 24 << 20  # the notes' sounds kept: ~130 of the longest

_CEILING: Final = 10 ** (CEILING_DBFS / 20)
_TARGET_POWER: Final = 10 ** (TARGET_DBFS / 10)
_MAX_GAIN: Final = 10 ** (MAX_GAIN_DB / 20)
_GATE_POWER: Final = 10 ** (GATE_DBFS / 10)
_SMOOTH: Final = float(np.exp(-FRAME / RATE / LEVEL_SECONDS))
_RISE: Final = 10 ** (RISE_DB_PER_FRAME / 20)


def band_limit(sound: Mono) -> Mono:
    """`sound` (8 kHz) through the phone band: flat over `BAND_HZ`, raised-cosine
    skirts to nothing at `EDGE_HZ`; zero-phase, zero-padded so nothing wraps round."""
    if sound.size == 0:
        return sound
    size = 1 << (sound.size + 512).bit_length()
    spectrum = np.fft.rfft(sound.astype(np.float64), size)
    hz = np.fft.rfftfreq(size, 1 / RATE)
    (low_edge, high_edge), (low, high) = EDGE_HZ, BAND_HZ
    rise = np.clip((hz - low_edge) / (low - low_edge), 0.0, 1.0)
    fall = np.clip((high_edge - hz) / (high_edge - high), 0.0, 1.0)
    spectrum *= (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))
    return np.fft.irfft(spectrum, size)[: sound.size].astype(np.float32)


def _add_into(voice: ArrayVoice, out: Mono, start: int) -> None:
    """Add what `voice` plays in [start, start + len(out)) to `out`."""
    sound = voice.sound
    if sound is None:
        return
    begin, finish = max(voice.at, start), min(voice.end, start + len(out))
    if finish <= begin:
        return
    part = sound[begin - voice.at : finish - voice.at] * np.float32(voice.volume)
    if voice.fade_from >= 0 and finish > voice.fade_from:
        position = np.arange(begin, finish, dtype=np.float32)
        ramp = 1 - (position - voice.fade_from) / np.float32(voice.fade_frames)
        part *= np.clip(ramp, 0.0, 1.0)
    out[begin - start : finish - start] += part


@dataclass(slots=True)
class _Track:
    spec: TrackSpec
    samples: SampleSet
    voices: list[ArrayVoice]


@dataclass(slots=True)
class _Level:
    """One mix's levelling: a slow gain to the target RMS, a peak limiter under it."""

    power: float = -1.0  # the smoothed mean square; < 0 until the first sound
    gain: float = 1.0

    def apply(self, mix: Mono) -> Mono:
        power = float(np.dot(mix, mix)) / len(mix)
        if power > _GATE_POWER:
            self.power = power if self.power < 0 else _SMOOTH * self.power + (1 - _SMOOTH) * power
        if self.power < 0:
            return mix  # silence so far
        wanted = min(_MAX_GAIN, float(np.sqrt(_TARGET_POWER / self.power)))
        peak = float(np.max(np.abs(mix)))
        if peak * wanted > _CEILING:
            wanted = _CEILING / peak
        previous, self.gain = self.gain, min(wanted, self.gain * _RISE)
        if self.gain < previous:  # a peak: down at once
            out = mix * np.float32(self.gain)
        else:
            out = mix * np.linspace(previous, self.gain, len(mix), dtype=np.float32)
        levelled: Mono = np.clip(out, -_CEILING, _CEILING).astype(np.float32)
        return levelled


# Every 16-bit sample's μ-law byte, from the relay's encoder (one table look-up a
# sample instead of its dozen array operations: a frame's encoding is 64 KB of table).
_ULAW_OF: Final = np.frombuffer(ulaw_encode(np.arange(-32768, 32768)), dtype=np.uint8)


def encode(mix: Mono) -> PhoneAudio:
    """A levelled mix (within ±1) as 16-bit PCM and as μ-law."""
    pcm = np.rint(mix * np.float32(32767)).astype("<i2")
    return PhoneAudio(pcm.tobytes(), _ULAW_OF[pcm.astype(np.int32) + 32768].tobytes())


@dataclass(frozen=True, slots=True)
class PhoneAudio:
    """20 ms of one mix: 160 samples as 16-bit little-endian PCM, and as μ-law."""

    pcm16: bytes
    ulaw: bytes


@dataclass(slots=True)
class PhoneFrame:
    """One 20 ms frame of every mix: `mixes[None]` is the shared mix, `mixes[track]`
    the mix for whoever holds `track`. `for_caller` is what to send one caller."""

    start: int  # the frame's first sample (8 kHz, engine clock × 8,000)
    mixes: dict[str | None, PhoneAudio]
    _levelled: dict[str | None, Mono]
    _cues: dict[str, Mono]  # by caller: the cue's part in this frame
    _made: dict[str, PhoneAudio] = field(default_factory=dict)

    @property
    def cued(self) -> tuple[str, ...]:
        """The callers a cue plays to in this frame."""
        return tuple(self._cues)

    def for_caller(self, caller: str, track: str | None) -> PhoneAudio:
        """The frame for `caller`, who holds `track` (None: none, or one without a mix
        of its own): their track's mix — the same object for all who share it — or,
        while a cue plays for them, that mix ducked under their cue."""
        mix = track if track in self.mixes else None
        cue = self._cues.get(caller)
        if cue is None:
            return self.mixes[mix]
        made = self._made.get(caller)
        if made is None:
            music = self._levelled[mix] * np.float32(CUE_DUCK)
            made = self._made[caller] = encode(np.clip(music + cue, -_CEILING, _CEILING))
        return made


class PhoneSounds:
    """Each note's sound on each track, as the phone plays it: the library's sample
    resampled once straight to 8 kHz at the note's pitch, band-limited, kept — the
    least recently used dropped beyond `limit` bytes (a night may play every note of
    every track: up to tracks × 128 sounds of ≤ 6 s, 192 KB each; a voice still
    playing a dropped sound keeps it alive). Mixers may share one (it holds no voice)."""

    def __init__(self, limit: int = SOUNDS_BYTES) -> None:
        self._resampler: PreparedSounds[Mono] = PreparedSounds(RATE, lambda s: (s, s.nbytes))
        self._kept: Kept[tuple[str, int], Mono] = Kept(limit)

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def nbytes(self) -> int:
        """The bytes the sounds kept take."""
        return self._kept.nbytes

    def get(self, spec: TrackSpec, sample_set: SampleSet, note: int) -> Mono:
        key = (spec.name, note)
        kept = self._kept.find(key)
        if kept is not None:
            return kept[0]
        sound = band_limit(self._resampler.mono(sample_set, note))
        return self._kept.put(key, sound, sound.nbytes)


class PhoneMixer:
    """The phone mixes of a show, 20 ms at a time (see the module's docstring).

    Feed it the notes the scheduler hands the speakers (`note_on`, `note_off`,
    `panic`, each at its own time on the engine clock; it is a `NoteSink`), then call
    `frame(now)` every 20 ms with the frame's start on the same clock. A note due
    before a frame it was not fed in time for starts at that frame's first sample."""

    name = "phone"

    def __init__(
        self,
        sample_sets: Mapping[str, SampleSet],
        tracks: Sequence[TrackSpec],
        own_boost_db: float = OWN_BOOST_DB,
        sounds: PhoneSounds | None = None,
    ) -> None:
        self._clock = FrameClock()
        self._order = 0
        self._boost = np.float32(10 ** (own_boost_db / 20) - 1)
        self.sounds = PhoneSounds() if sounds is None else sounds
        self._tracks: dict[str, _Track] = {}
        for spec in tracks:
            sample_set = sample_sets.get(spec.samples)
            if sample_set is not None:
                voices = [ArrayVoice(self._clock, RATE) for _ in range(VOICES_PER_TRACK)]
                self._tracks[spec.name] = _Track(spec, sample_set, voices)
        # (first sample, order fed, note; None: a panic), a heap: notes may come early.
        self._pending: list[tuple[int, int, NoteOn | NoteOff | None]] = []
        self._fed = 0
        self._levels: dict[str | None, _Level] = {}
        self._cues: dict[str, tuple[int, Mono]] = {}  # caller: (first sample, sound)

    # -- the NoteSink side -------------------------------------------------------

    def note_on(self, note: NoteOn) -> None:
        self._queue(note.time, note)

    def note_off(self, note: NoteOff) -> None:
        self._queue(note.time, note)

    def panic(self, time: float | None = None) -> None:
        """Every voice fades out at `time` (None: at the next frame's start)."""
        self._queue(time, None)

    def close(self) -> None:
        self._pending.clear()

    def prepare(self, note: NoteOn) -> None:
        """Make `note`'s sound now, before it is due (`PreparesNotes`)."""
        track = self._tracks.get(note.track)
        if track is not None and 0 <= note.note <= 127:
            self.sounds.get(track.spec, track.samples, note.note)

    def cue(self, caller: str, kind: Cue, time: float) -> None:
        """Play `kind`'s cue to `caller` alone, from `time` (engine clock); a newer cue
        replaces one still playing. `caller` is the engine's opaque caller id, never a
        phone number (``relay/contract/privacy.py``)."""
        self._cues[caller] = (max(0, round(time * RATE)), CUE_SOUNDS[kind])

    def _queue(self, time: float | None, note: NoteOn | NoteOff | None) -> None:
        at = -1 if time is None else max(0, round(time * RATE))
        self._fed += 1
        heapq.heappush(self._pending, (at, self._fed, note))

    # -- the frames ----------------------------------------------------------------

    def frame(self, now: float, holders: Collection[str] | None = None) -> PhoneFrame:
        """The 20 ms from `now` (engine clock): the shared mix, and a mix of its own
        for each track in `holders` (None: every track)."""
        start = round(now * RATE)
        end = start + FRAME
        parts = {name: np.zeros(FRAME, dtype=np.float32) for name in self._tracks}
        while self._pending and self._pending[0][0] < end:
            at, _, note = heapq.heappop(self._pending)  # in time order, then as fed
            self._clock.frame = max(at, start)
            self._play(note, parts, start)
        shared = np.zeros(FRAME, dtype=np.float32)
        for name, track in self._tracks.items():
            for voice in track.voices:
                _add_into(voice, parts[name], start)
                if voice.sound is not None and voice.end <= end:
                    voice.sound = None
            shared += parts[name]
        raw: dict[str | None, Mono] = {None: shared}
        for name in self._tracks if holders is None else holders:
            if name in parts:
                raw[name] = shared + parts[name] * self._boost
        levelled = {key: self._level(key).apply(mix) for key, mix in raw.items()}
        mixes = {key: encode(mix) for key, mix in levelled.items()}
        return PhoneFrame(start, mixes, levelled, self._cue_parts(start))

    def _level(self, key: str | None) -> _Level:
        level = self._levels.get(key)
        if level is None:
            level = self._levels[key] = _Level()
        return level

    def _cue_parts(self, start: int) -> dict[str, Mono]:
        parts: dict[str, Mono] = {}
        for caller, (at, sound) in list(self._cues.items()):
            if at >= start + FRAME:
                continue
            if at + len(sound) <= start:
                del self._cues[caller]
                continue
            part = np.zeros(FRAME, dtype=np.float32)
            begin = max(at, start)
            piece = sound[begin - at : begin - at + start + FRAME - begin]
            part[begin - start : begin - start + len(piece)] = piece
            parts[caller] = part
        return parts

    def _play(self, note: NoteOn | NoteOff | None, parts: dict[str, Mono], start: int) -> None:
        if note is None:
            silence(v for t in self._tracks.values() for v in t.voices)
            return
        track = self._tracks.get(note.track)
        if track is None or not 0 <= note.note <= 127:
            return  # a track the phone does not play: silent here, as on the speakers
        if isinstance(note, NoteOn) and note.velocity > 0:
            sound = self.sounds.get(track.spec, track.samples, note.note)
            gain = sample_gain(track.samples, note.note) * fader(track.spec)
            volume = voice_volume(gain, note.velocity)
            part = parts[note.track]

            def play(voice: ArrayVoice) -> None:
                _add_into(voice, part, start)  # what it played before it was taken
                voice.sound, voice.volume, voice.fade_from = sound, volume, -1
                voice.at = self._clock.frame
                voice.end = voice.at + len(sound)

            self._order += 1
            exclusive = exclusive_class(track.samples, note.note)
            start_voice(track.voices, note.note, exclusive, self._order, play)
        else:
            release_voices(track.voices, track.samples, note.note)
