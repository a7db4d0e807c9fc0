"""A night's notes mixed offline into what the speakers played: stereo float32 audio at
44,100 Hz, with no mixer, no sound device and no clock, many times faster than real time.

The notes are played by the live speakers' rules (``billboard/voicing.py``: the same
sample library, sounds, volumes, voices per track, stealing, chokes, releases and panic
fades), so a night published from its event log sounds as it did on the building. What
differs is only what a sound card adds: each note starts on its own sample, not on the
next mixer buffer, and fades are sample-smooth ramps, not a step per buffer.

Each voice's sound is added into the output as one numpy slice when the voice is done
(its sound over, or cut by a fade or a steal), never sample by sample. Each track's
pan, fader and sends are its `TrackSpec`'s (``billboard/mix.py``), with the delay
following the tempo map.

Pure: numpy, pedalboard and the stdlib `wave` module; no pygame.
"""

from __future__ import annotations

import logging
import math
import wave
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from .engine.events import Note, NoteOn
from .engine.tracks import TrackSpec
from .mix import WET_MAX_SECONDS, WET_VOICES, Stereo
from .samples import SampleSet
from .voicing import (
    MAX_VOICE_SECONDS,
    VOICES_PER_TRACK,
    ArrayVoice,
    FrameClock,
    PreparedSounds,
    exclusive_class,
    release_voices,
    silence,
    start_voice,
    to_pcm16,
    voice_volume,
)

log = logging.getLogger("billboard.render")

RATE: Final = 44100


@dataclass(slots=True)
class _Track:
    spec: TrackSpec
    samples: SampleSet
    voices: list[ArrayVoice] = field(default_factory=list)
    wet: list[ArrayVoice] = field(default_factory=list)


class _Mixdown:
    """The voices of every track and the output they add into."""

    def __init__(
        self,
        sample_sets: Mapping[str, SampleSet],
        tracks: Sequence[TrackSpec],
        rate: int,
        frames: int,
    ) -> None:
        self.rate = rate
        self.now = FrameClock()
        self.order = 0
        self.bpm = 120.0
        self.sounds: PreparedSounds[Stereo] = PreparedSounds(rate, lambda s: (s, s.nbytes))
        self.tracks: dict[str, _Track] = {}
        for spec in tracks:
            sample_set = sample_sets.get(spec.samples)
            if sample_set is None:
                log.warning("track %r: no sample set %r; it is silent", spec.name, spec.samples)
                continue
            voices = [ArrayVoice(self.now, rate) for _ in range(VOICES_PER_TRACK)]
            wet = [ArrayVoice(self.now, rate) for _ in range(WET_VOICES)]
            self.tracks[spec.name] = _Track(spec, sample_set, voices, wet)
        self.out = np.zeros((frames, 2), dtype=np.float32)
        self.length = 0  # frames sounded so far
        self.ignored: set[object] = set()

    def play(self, note: Note) -> None:
        self.now.frame = max(0, round(note.time * self.rate))
        track = self.tracks.get(note.track)
        if track is None or not 0 <= note.note <= 127:
            self._ignore(note)
            return
        if isinstance(note, NoteOn) and note.velocity > 0:
            sound, gain = self.sounds.get(track.spec, track.samples, note.note)
            wet = self.sounds.wet(track.spec, track.samples, note.note, self.bpm)
            volume = voice_volume(gain, note.velocity)
            exclusive = exclusive_class(track.samples, note.note)
            self._start(track.voices, note.note, exclusive, sound, volume)
            if wet is not None:
                self._start(track.wet, note.note, None, wet, volume)
        else:  # a note-off, or a note-on at velocity 0, as in MIDI
            release_voices(track.voices, track.samples, note.note)

    def _start(
        self, pool: list[ArrayVoice], note: int, exclusive: int | None, sound: Stereo, volume: float
    ) -> None:
        def play(voice: ArrayVoice) -> None:
            self._finish(voice)
            voice.sound, voice.volume = sound, volume
            voice.at, voice.end = self.now.frame, self.now.frame + len(sound)
            voice.fade_from = -1

        self.order += 1
        start_voice(pool, note, exclusive, self.order, play)

    def panic(self, time: float) -> None:
        self.now.frame = max(0, round(time * self.rate))
        silence(v for t in self.tracks.values() for v in (*t.voices, *t.wet))

    def finish(self, until: float) -> Stereo:
        for track in self.tracks.values():
            for voice in (*track.voices, *track.wet):
                self._finish(voice)
        frames = max(self.length, round(until * self.rate))
        return self.out[:frames]

    def _finish(self, voice: ArrayVoice) -> None:
        """Add the sound `voice` played, now that its end is known."""
        sound, start, end = voice.sound, voice.at, voice.end
        voice.sound = None
        if sound is None or end <= start:
            return
        part = sound[: end - start] * np.float32(voice.volume)
        if voice.fade_from >= 0:
            faded = end - voice.fade_from
            ramp = np.arange(faded, dtype=np.float32) / np.float32(-voice.fade_frames) + 1
            part[len(part) - faded :] *= ramp[:, np.newaxis]
        self.out[start:end] += part
        self.length = max(self.length, end)

    def _ignore(self, note: Note) -> None:
        key = note.track if note.track not in self.tracks else (note.track, note.note)
        if key not in self.ignored:
            self.ignored.add(key)
            log.warning("ignoring notes for %r (unknown track, or beyond MIDI 0–127)", key)


def render(
    notes: Iterable[Note],
    sample_sets: Mapping[str, SampleSet],
    tracks: Sequence[TrackSpec],
    *,
    until: float = 0.0,
    panics: Iterable[float] = (),
    tempi: Iterable[tuple[float, float]] = (),
    bpm: float = 120.0,
    rate: int = RATE,
) -> Stereo:
    """`notes` (each at its own `time`, seconds from the start of the output) as the
        speakers would have played them: float32 frames × 2 (left, right).

        The output lasts until `until` or until the last sound has died away, whichever is
        later: nothing is cut mid-note. `panics` are the times the operator pressed panic
        (every voice fades out at once, as live); `tempi` the (time, bpm) of each tempo change
    after the starting `bpm` (the delay follows). Notes of a track without a sample set, or
        of a track `tracks` does not have, are silent. Not clipped: a mix louder than full
        scale goes beyond ±1 here (`write_wav` clips and counts)."""
    ordered = sorted(notes, key=lambda n: n.time)  # stable: ties keep the outputs' order
    pending = sorted(panics)
    last = max((n.time for n in ordered if isinstance(n, NoteOn)), default=0.0)
    longest = int((MAX_VOICE_SECONDS + WET_MAX_SECONDS) * rate)  # a note's and its tail's
    frames = math.ceil(max(until, last, 0.0) * rate) + longest + 2
    changes = sorted(tempi)
    mixdown = _Mixdown(sample_sets, tracks, rate, frames)
    mixdown.bpm = bpm
    for note in ordered:
        # Live, a panic's note-offs leave just before it, and nothing else is due then.
        while pending and pending[0] < note.time:
            mixdown.panic(pending.pop(0))
        while changes and changes[0][0] <= note.time:
            mixdown.bpm = changes.pop(0)[1]
        mixdown.play(note)
    for time in pending:
        mixdown.panic(time)
    return mixdown.finish(until)


def write_wav(path: Path, audio: Stereo, rate: int = RATE) -> int:
    """Write `audio` (frames × channels) as a 16-bit PCM WAV file; the number of
    samples (each channel's counted) clipped to full scale. OSError when it cannot."""
    clipped = int(np.count_nonzero(np.abs(audio) > 1.0))
    pcm = to_pcm16(audio)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.astype("<i2").tobytes())
    return clipped
