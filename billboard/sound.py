"""The billboard's speakers: the engine's notes played on pygame.mixer.

The only module of the billboard that imports ``pygame.mixer``. It plays the sample
library (``billboard/samples.py``) on a small pool of mixer channels per track, by the
playing rules of ``billboard/voicing.py`` (which the offline render,
``billboard/render.py``, follows too):

- a drum note plays its set's file for that note, or the stand-in `drum_note` finds;
- a pitched note plays the nearest zone resampled to it (cached per track and note,
  and prepared ahead by the scheduler, so `note_on` only starts a prepared sound);
- each note is panned, and what the track's reverb and delay send back for it plays
  on a wet voice of its own (``billboard/mix.py``). A wet sound takes tens of ms to
  compute, so a worker thread makes them outside the lock: every note of every track
  while the speakers open (a few seconds, before the show starts), any other as soon
  as it is first prepared; a note whose wet sound is not ready yet plays dry;
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
import queue
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pygame
import pygame.mixer

from relay.ratelimit import LogOnce

from .engine.events import NoteOff, NoteOn
from .engine.roles import CEILING, role
from .engine.tracks import TrackSpec
from .mix import WET_VOICES, Stereo
from .samples import SampleSet, load_sample_sets
from .voicing import (
    VOICES_PER_TRACK,
    Key,
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
# Opening waits this long at most for every note's reverb and delay (a few seconds):
# made before the show starts, they cost its notes nothing.
WARM_TIMEOUT_S: Final = 30.0
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
    spec: TrackSpec
    samples: SampleSet | None
    voices: list[_Voice]
    wet: list[_Voice]  # the sends' returns: no note-off, they ring out


# A wet sound to compute: the track, its samples, the note, the tempo, where to keep it.
_WetJob = tuple[TrackSpec, SampleSet, int, float, Key]


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
        bpm: float = 120.0,
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
        self._bpm = bpm
        self._warned = LogOnce(burst=20, max_keys=_WARN_KEYS_MAX)
        self._rate, self._channels, frames = _open_mixer(frequency, buffer)
        self.driver: str = pygame.mixer.get_driver()
        self._sounds = PreparedSounds(self._rate, self._make_sound)
        self.latency_ms: float = 1000.0 * frames / self._rate
        per_track = voices_per_track + WET_VOICES
        reserved = len(tracks) * per_track
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
            channels = [_Voice(pygame.mixer.Channel(i * per_track + j)) for j in range(per_track)]
            self._tracks[spec.name] = _Track(
                spec, sample_set, channels[:voices_per_track], channels[voices_per_track:]
            )
        self._wet_jobs: queue.SimpleQueue[_WetJob | None] = queue.SimpleQueue()
        self._wet_pending: set[Key] = set()
        for track in self._tracks.values():  # every note a track may play, from the start
            for note in _range(track):
                assert track.samples is not None  # _range is empty for a silent track
                self._sounds.get(track.spec, track.samples, note)
                self._want_wet(track, note)
        self._wet_worker = threading.Thread(target=self._make_wet, name="wet-sounds", daemon=True)
        self._wet_worker.start()
        self._await_wet(WARM_TIMEOUT_S)
        log.info(
            "sound: %s driver, %d Hz, %d channels, %.1f ms buffer, %d voices",
            pygame.mixer.get_driver(),
            self._rate,
            self._channels,
            self.latency_ms,
            reserved,
        )

    @property
    def silent(self) -> bool:
        """Nothing reaches a speaker: SDL's dummy driver (or its disk driver, a file)."""
        return self.driver in ("dummy", "disk")

    def describe(self) -> str:
        """What the operator hears from this output, in a line."""
        if self.driver == "dummy":
            return "silent: SDL's dummy audio driver plays to nothing (no sound card?)"
        where = "to a file (SDL's disk driver)" if self.driver == "disk" else "on"
        return (
            f"{where} {self.driver}, {self._rate} Hz, {self._channels} channels, "
            f"{self.latency_ms:.1f} ms buffer"
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
                sound, gain = self._sounds.get(track.spec, track.samples, note.note)
                volume = voice_volume(gain, note.velocity)
                exclusive = exclusive_class(track.samples, note.note)
                self._start(track.voices, note.note, sound, volume, exclusive)
                wet = self._want_wet(track, note.note)
                if wet is not None:
                    self._start(track.wet, note.note, wet, volume, None)
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
                    self._sounds.get(track.spec, track.samples, note.note)
                    self._want_wet(track, note.note)
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

    def wet_pending(self) -> int:
        """Wet sounds asked of the worker and not made yet (0: every note asked for so
        far plays with its reverb and delay)."""
        with self._lock:
            return len(self._wet_pending)

    def set_tempo(self, bpm: float, time: float) -> None:
        """The operator changed the tempo: the delay's echoes follow (`FollowsTempo`)."""
        with self._lock:
            self._bpm = bpm

    def close(self) -> None:
        """Stop every sound and close the mixer. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wet_jobs.put(None)
            self._sounds.clear()
            with contextlib.suppress(pygame.error):  # closed by someone else: nothing to stop
                pygame.mixer.stop()
            pygame.mixer.quit()

    # -- internals (called with the lock held) --

    def _voices(self) -> list[_Voice]:
        return [v for t in self._tracks.values() for v in (*t.voices, *t.wet)]

    def _want_wet(self, track: _Track, note: int) -> pygame.mixer.Sound | None:
        """`note`'s wet sound on `track` if it is ready; else None, and it is asked of
        the worker (once)."""
        if track.samples is None:
            return None
        key = self._sounds.wet_key(track.spec, note, self._bpm)
        known, wet = self._sounds.cached_wet(key)
        if not known and key not in self._wet_pending:
            self._wet_pending.add(key)
            self._wet_jobs.put((track.spec, track.samples, note, self._bpm, key))
        return wet

    def _await_wet(self, timeout: float) -> None:
        """Wait until the worker has made every wet sound asked for (at most `timeout`
        seconds: after that, notes play dry until theirs is made)."""
        began = time.monotonic()
        asked = self.wet_pending()
        while self.wet_pending() and time.monotonic() - began < timeout:
            time.sleep(0.02)
        log.info(
            "sound: %d reverb and delay tails made in %.1f s%s",
            asked - self.wet_pending(),
            time.monotonic() - began,
            "" if not self.wet_pending() else f"; {self.wet_pending()} still to make",
        )

    def _make_wet(self) -> None:
        """The worker: compute each wet sound asked for, outside the lock, and keep it.
        A sound that cannot be made is logged and left dry; the worker goes on. It runs
        at a lower priority than the show (where the system allows), so a tempo change's
        new echoes never hold up a note."""
        with contextlib.suppress(AttributeError, OSError):  # Linux: a thread's own nice
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while (job := self._wet_jobs.get()) is not None:
            spec, sample_set, note, bpm, key = job
            with self._lock:
                stale = key != self._sounds.wet_key(spec, note, self._bpm)
                if stale:  # the tempo moved on: echoes nobody will play again
                    self._wet_pending.discard(key)
            if stale:
                continue
            made: tuple[pygame.mixer.Sound | None, int] = (None, 0)
            try:
                made = self._sounds.make(self._sounds.compute_wet(spec, sample_set, note, bpm))
            except Exception as exc:  # a bad sample or a closed mixer must not end it
                name = spec.name
                self._warn_once(("wet", name), "cannot make %r's wet sound: %s", name, exc)
            with self._lock:
                self._wet_pending.discard(key)
                if self._closed:
                    return
                self._sounds.put_wet(key, made)

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

    def _make_sound(self, stereo: Stereo) -> tuple[pygame.mixer.Sound, int]:
        """A prepared stereo sound as a mixer sound, and the bytes it holds: on a mono
        device both sides summed; beyond two speakers, left and right on each pair."""
        pcm = to_pcm16(stereo.mean(axis=1) if self._channels == 1 else stereo)
        if self._channels > 2:
            pcm = np.tile(pcm, (1, (self._channels + 1) // 2))[:, : self._channels]
        pcm = np.ascontiguousarray(pcm)
        return pygame.mixer.Sound(buffer=pcm.tobytes()), pcm.nbytes

    def _start(
        self,
        pool: list[_Voice],
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
        start_voice(pool, note, exclusive, self._order, play)

    def _warn_once(self, key: tuple[object, ...], message: str, *args: object) -> None:
        # A flood of distinct bad notes: twenty lines, then one a second at most.
        self._warned.log(log, logging.WARNING, key, message, *args, now=time.monotonic())


def _range(track: _Track) -> Iterator[int]:
    """The notes `track` may play: a drum set's notes; a pitched track's from a few
    below its octave up to its role's ceiling (``billboard/engine/roles.py``)."""
    if track.samples is None:
        return iter(())
    if track.samples.kind == "drums":
        return iter(sorted(track.samples.drums))
    low = max(0, 12 * (track.spec.octave + 1) - 3)
    return iter(range(low, min(127, CEILING[role(track.spec)]) + 1))


def _open_mixer(frequency: int, buffer: int) -> tuple[int, int, int]:
    """Open pygame.mixer for 16-bit output; (rate, speakers, buffer frames). The rate
    and speaker count are the device's if it prefers others; OSError if it cannot open."""
    # pygame.init() opens the mixer with its own defaults, and a second init() would be
    # ignored: close it first so our small buffer applies.
    pygame.mixer.quit()
    absent = no_sound_device()
    if absent is not None:
        raise OSError(f"{absent}; SDL_AUDIODRIVER chooses a driver (dummy: silence)")
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


def no_sound_device() -> str | None:
    """Why no speakers can be found, when that is certain before asking SDL; None when
    SDL should try. On Linux without a sound card (/dev/snd), PulseAudio or PipeWire,
    SDL would try ALSA, whose library prints eight lines of its own errors ("ALSA lib
    confmisc.c:855: cannot find card '0'", …) before failing: we say it in one. A
    driver chosen with SDL_AUDIODRIVER is always tried."""
    if not sys.platform.startswith("linux") or os.environ.get("SDL_AUDIODRIVER"):
        return None
    if os.path.exists("/dev/snd") or os.environ.get("PULSE_SERVER"):
        return None
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    if any(os.path.exists(os.path.join(runtime, name)) for name in ("pulse/native", "pipewire-0")):
        return None
    return "no sound card here (no /dev/snd, PulseAudio or PipeWire)"
