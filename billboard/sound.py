"""The billboard's speakers: the engine's notes played on pygame.mixer.

The only module of the billboard that imports ``pygame.mixer``. It plays the sample
library (``billboard/samples.py``) on a small pool of mixer channels per track, by the
playing rules of ``billboard/voicing.py`` (which the offline render,
``billboard/render.py``, follows too):

- a drum note plays its set's file for that note, or the stand-in `drum_note` finds;
- a pitched note plays the nearest zone resampled to it (cached per set and note, and
  prepared ahead by the scheduler, so `note_on` only starts a prepared sound);
- a track that runs out of voices steals its own oldest one, never another track's;
- velocity sets the channel volume; nothing the engine sends can make `note_on` or
  `note_off` raise: a bad note is ignored and logged once.

`SoundOut` is an output of the scheduler (a `NoteSink`, ``billboard/outputs.py``). Its
methods may be called from the scheduler's thread and the display's thread at once (a
lock keeps its voices consistent). One `SoundOut` per process: it owns the mixer and
closes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pygame
import pygame.mixer

from relay.ratelimit import LogOnce

from .engine.events import NoteOff, NoteOn
from .engine.tracks import TrackSpec
from .samples import Samples, SampleSet, load_sample_sets
from .voicing import (
    VOICES_PER_TRACK,
    PreparedSounds,
    exclusive_class,
    release_voices,
    silence,
    start_voice,
    to_pcm16,
    voice_volume,
)

log = logging.getLogger("billboard.sound")

# Unreserved channels left for anyone else's Sound.play(); our tracks never take them.
SPARE_CHANNELS: Final = 8
_WARN_KEYS_MAX: Final = 256  # distinct "ignored" warnings remembered


# -- the mixer ---------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Voice:
    """One mixer channel of a track's pool (a `voicing.Voice`), and the note it was
    last given."""

    channel: pygame.mixer.Channel
    note: int = -1
    exclusive: int | None = None
    started: int = 0  # play order: the oldest voice is stolen first
    volume: float = 0.0
    released: bool = True  # note-off given (fading or done): first to be reused

    def busy(self) -> bool:
        return bool(self.channel.get_busy())

    def fade(self, ms: int) -> None:
        self.channel.fadeout(ms)

    def stop(self) -> None:
        self.channel.stop()


@dataclass(slots=True)
class _Track:
    name: str
    samples: SampleSet | None
    voices: list[_Voice]


class SoundOut:
    """The engine's notes on the mixer; see the module docstring."""

    name = "sound"

    def __init__(
        self,
        sounds_dir: Path,
        tracks: Sequence[TrackSpec],
        *,
        buffer: int = 256,
        frequency: int = 44100,
        voices_per_track: int = VOICES_PER_TRACK,
    ) -> None:
        """Read the samples, then open the mixer with a `buffer` of frames (small for
        low latency). OSError, with the cause, when the samples cannot be read or the
        mixer cannot open (no audio device, an unknown SDL_AUDIODRIVER)."""
        if voices_per_track < 1:
            raise ValueError("a track needs at least one voice")
        self._sets = load_sample_sets(sounds_dir)
        self._lock = threading.Lock()
        self._closed = False
        self._muted = False
        self._order = 0
        self._warned = LogOnce(burst=20, max_keys=_WARN_KEYS_MAX)
        self._rate, self._channels, frames = _open_mixer(frequency, buffer)
        self._sounds = PreparedSounds(self._rate, self._make_sound)
        self.latency_ms: float = 1000.0 * frames / self._rate
        reserved = len(tracks) * voices_per_track
        pygame.mixer.set_num_channels(reserved + SPARE_CHANNELS)
        pygame.mixer.set_reserved(reserved)  # Sound.play() elsewhere never takes these
        self._tracks: dict[str, _Track] = {}
        for i, spec in enumerate(tracks):
            sample_set = self._sets.get(spec.samples)
            if sample_set is None:
                log.warning(
                    "track %r: no sample set %r in %s; the track is silent (MIDI still plays)",
                    spec.name,
                    spec.samples,
                    sounds_dir,
                )
            if spec.name in self._tracks:
                log.warning("two tracks are named %r; the last one is heard", spec.name)
            first = i * voices_per_track
            voices = [_Voice(pygame.mixer.Channel(first + j)) for j in range(voices_per_track)]
            self._tracks[spec.name] = _Track(spec.name, sample_set, voices)
        log.info(
            "sound: %s driver, %d Hz, %d channels, %.1f ms buffer, %d voices",
            pygame.mixer.get_driver(),
            self._rate,
            self._channels,
            self.latency_ms,
            reserved,
        )

    # -- the NoteSink protocol (billboard/outputs.py) --

    def note_on(self, note: NoteOn) -> None:
        """Start `note` now (the scheduler calls this at the note's time). A note-on at
        velocity 0 is a note-off, as in MIDI. Bad input is ignored and logged once."""
        with self._lock:
            track = self._usable_track(note.track, note.note)
            if track is None or track.samples is None:
                return
            if not isinstance(note.velocity, int):
                self._warn_once(("velocity",), "ignoring a note with velocity %r", note.velocity)
                return
            if note.velocity <= 0:
                release_voices(track.voices, track.samples, note.note)
                return
            try:
                sound, gain = self._sounds.get(track.samples, note.note)
                volume = voice_volume(gain, note.velocity)
                exclusive = exclusive_class(track.samples, note.note)
                self._start(track, note.note, sound, volume, exclusive)
            except pygame.error as exc:  # the device went away: keep the show going
                self._warn_once(("mixer", str(exc)), "the mixer refused a note: %s", exc)

    def note_off(self, note: NoteOff) -> None:
        """End `note` with its set's release fade. Drums ring out (a drum has no
        note-off). Bad input is ignored and logged once."""
        with self._lock:
            track = self._usable_track(note.track, note.note)
            if track is not None:
                try:
                    if track.samples is not None:
                        release_voices(track.voices, track.samples, note.note)
                except pygame.error as exc:
                    self._warn_once(("mixer", str(exc)), "the mixer refused a note-off: %s", exc)

    def prepare(self, note: NoteOn) -> None:
        """Resample and cache `note`'s sound now, so its `note_on` only starts it (for a
        scheduler that sees notes ahead of their time). Never raises on bad input."""
        with self._lock:
            track = self._usable_track(note.track, note.note)
            if track is not None and track.samples is not None:
                try:
                    self._sounds.get(track.samples, note.note)
                except pygame.error as exc:
                    self._warn_once(("mixer", str(exc)), "the mixer refused a sound: %s", exc)

    def panic(self) -> None:
        """Silence everything at once (a 10 ms fade, so the PA does not pop)."""
        with self._lock:
            if self._closed:
                return
            try:
                silence(self._voices())
            except pygame.error as exc:
                self._warn_once(("mixer", str(exc)), "the mixer refused a panic: %s", exc)
                for voice in self._voices():
                    voice.released, voice.note = True, -1

    def set_muted(self, muted: bool) -> None:
        """Mute (or unmute) all sound. Notes go on being played and tracked silently,
        so a held pad is heard again on unmute, like a mixing desk's mute button."""
        with self._lock:
            self._muted = muted
            if self._closed:
                return
            try:
                for voice in self._voices():
                    if not voice.channel.get_busy():
                        continue
                    if not muted:
                        voice.channel.set_volume(voice.volume)
                    elif voice.released:
                        # A fade sets the volume itself each mix; this note was ending anyway.
                        voice.channel.stop()
                    else:
                        voice.channel.set_volume(0.0)
            except pygame.error as exc:
                self._warn_once(("mixer", str(exc)), "the mixer refused to mute: %s", exc)

    def close(self) -> None:
        """Stop every sound and close the mixer. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._sounds.clear()
            with contextlib.suppress(pygame.error):  # closed by someone else: nothing to stop
                pygame.mixer.stop()
            pygame.mixer.quit()

    # -- internals (called with the lock held) --

    def _voices(self) -> list[_Voice]:
        return [v for t in self._tracks.values() for v in t.voices]

    def _usable_track(self, name: str, note: int) -> _Track | None:
        if self._closed:
            return None
        track = self._tracks.get(name)
        if track is None:
            self._warn_once(("track", name), "ignoring notes for unknown track %r", name)
            return None
        if not isinstance(note, int) or not 0 <= note <= 127:
            self._warn_once(
                ("note", name), "ignoring note %r on track %r (MIDI is 0–127)", note, name
            )
            return None
        return track

    def _make_sound(self, mono: Samples) -> tuple[pygame.mixer.Sound, int]:
        """A prepared note as a mixer sound, and the bytes it holds."""
        pcm = to_pcm16(mono)
        if self._channels > 1:  # the same signal on every speaker
            pcm = np.ascontiguousarray(np.repeat(pcm[:, np.newaxis], self._channels, axis=1))
        return pygame.mixer.Sound(buffer=pcm.tobytes()), pcm.nbytes

    def _start(
        self,
        track: _Track,
        note: int,
        sound: pygame.mixer.Sound,
        volume: float,
        exclusive: int | None,
    ) -> None:
        def play(voice: _Voice) -> None:
            voice.volume = volume
            voice.channel.set_volume(0.0 if self._muted else volume)
            voice.channel.play(sound)

        self._order += 1
        start_voice(track.voices, note, exclusive, self._order, play)

    def _warn_once(self, key: tuple[object, ...], message: str, *args: object) -> None:
        # A flood of distinct bad notes: twenty lines, then one a second at most.
        self._warned.log(log, logging.WARNING, key, message, *args, now=time.monotonic())


def _open_mixer(frequency: int, buffer: int) -> tuple[int, int, int]:
    """Open pygame.mixer for 16-bit output; (rate, speakers, buffer frames). The rate
    and speaker count are the device's if it prefers others; OSError if it cannot open."""
    # pygame.init() opens the mixer with its own defaults, and a second init() would be
    # ignored: close it first so our small buffer applies.
    pygame.mixer.quit()
    driver = os.environ.get("SDL_AUDIODRIVER") or "default"
    try:
        pygame.mixer.init(
            frequency=frequency,
            size=-16,
            channels=2,
            buffer=buffer,
            allowedchanges=pygame.AUDIO_ALLOW_FREQUENCY_CHANGE | pygame.AUDIO_ALLOW_CHANNELS_CHANGE,
        )
    except pygame.error as exc:
        raise OSError(
            f"cannot open the sound mixer (SDL audio driver {driver!r}, {frequency} Hz, "
            f"buffer {buffer} frames): {exc}"
        ) from exc
    spec = pygame.mixer.get_init()
    if spec is None or spec[1] != -16:
        pygame.mixer.quit()
        raise OSError(f"the sound mixer opened in an unexpected format {spec!r}")
    rate, _, channels = spec
    # pygame rounds the buffer up to a power of two, at least 256 frames.
    frames = max(256, 1 << max(0, buffer - 1).bit_length())
    return rate, channels, frames
