"""The billboard's speakers: SoundOut on a real SDL mixer.

The mixer tests open pygame.mixer on SDL's "disk" audio driver, which writes the mixed
output, raw and in the mixer's own format, to a file at the pace of a sound card: what
the speakers would have played. No sound card is needed.

The voices' sentences play the tracks dry and centred (`DRY`); the mix's own give the
tracks their pans and sends, as the defaults do.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pygame
import pytest

from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS, TrackSpec
from billboard.mix import WET_VOICES
from billboard.sound import SoundOut
from billboard.voicing import VOICES_PER_TRACK, velocity_gain
from tests.billboard.audio import Audio, cents, dominant_hz, midi_hz, rms

SOUNDS = Path(__file__).resolve().parents[2] / "sounds"
DRY = tuple(replace(t, pan=0.0, gain_db=0.0, reverb=0.0, delay=0.0) for t in DEFAULT_TRACKS)


def test_louder_velocities_play_louder() -> None:
    gains = [velocity_gain(v) for v in range(128)]
    assert gains[0] == 0.0 and gains[127] == 1.0
    assert all(a < b for a, b in itertools.pairwise(gains))


# -- SoundOut on a real mixer ------------------------------------------------------


class Speakers:
    """What SDL's disk driver has written so far: positions, and the audio between."""

    def __init__(self, path: Path, out: SoundOut) -> None:
        self.path = path
        self.out = out
        init = pygame.mixer.get_init()
        assert init is not None and init[1] == -16
        self.rate, _, self.channels = init
        deadline = time.monotonic() + 5
        while self.position() == 0:  # the driver's thread writes from its first buffer
            assert time.monotonic() < deadline, "the disk audio driver wrote nothing"
            time.sleep(0.01)

    def position(self) -> int:
        """Frames written to the file so far. The file is written through a stdio
        buffer, so this lags the mixer by a few tens of milliseconds at most."""
        try:
            return self.path.stat().st_size // (2 * self.channels)
        except FileNotFoundError:
            return 0

    def read(self, start: int, end: int) -> Audio:
        """Frames [start, end) as mono floats in [-1, 1]."""
        mono: Audio = self.read_speakers(start, end).mean(axis=1)
        return mono

    def read_speakers(self, start: int, end: int) -> Audio:
        """Frames [start, end) as floats in [-1, 1], a column per speaker."""
        frame = 2 * self.channels
        with self.path.open("rb") as raw:
            raw.seek(start * frame)
            data = raw.read((end - start) * frame)
        pcm = np.frombuffer(data[: len(data) // frame * frame], dtype=np.int16)
        speakers: Audio = pcm.reshape(-1, self.channels) / 32768.0
        return speakers

    def listen(self, seconds: float, each: bool = False) -> Audio:
        """The next `seconds` of output (`each`: a column per speaker, else mono)."""
        start = self.position()
        time.sleep(seconds)
        audio = self.read_speakers(start, self.position())
        assert len(audio) > seconds * self.rate / 2, "the disk audio driver stalled"
        return audio if each else audio.mean(axis=1)


def open_speakers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracks: Sequence[TrackSpec]
) -> Speakers:
    raw = tmp_path / "speakers.raw"
    # Set before the mixer opens: SDL reads them when its audio subsystem starts, and
    # SoundOut closes any mixer opened earlier in this process.
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(raw))
    return Speakers(raw, SoundOut(SOUNDS, tracks))


@pytest.fixture
def speakers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Speakers]:
    opened = open_speakers(tmp_path, monkeypatch, DRY)
    try:
        yield opened
    finally:
        opened.out.close()
        pygame.mixer.quit()


@pytest.fixture
def mixed_speakers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Speakers]:
    """The default tracks, panned and with their sends, once every wet sound is made."""
    opened = open_speakers(tmp_path, monkeypatch, DEFAULT_TRACKS)
    try:
        deadline = time.monotonic() + 60  # a few seconds' work, on a busy machine
        while opened.out.wet_pending():
            assert time.monotonic() < deadline, "the wet sounds were never made"
            time.sleep(0.05)
        yield opened
    finally:
        opened.out.close()
        pygame.mixer.quit()


def on(track: str, note: int, velocity: int = 127) -> NoteOn:
    return NoteOn(time=0.0, step=0, track=track, channel=0, note=note, velocity=velocity)


def off(track: str, note: int) -> NoteOff:
    return NoteOff(time=0.0, step=0, track=track, channel=0, note=note)


def busy_channels(track: str | None = None) -> list[pygame.mixer.Channel]:
    """The mixer channels sounding now of one track's dry voices, or of every track's:
    SoundOut reserves `VOICES_PER_TRACK` channels per track, then `WET_VOICES`, in
    track order."""
    names = [spec.name for spec in DEFAULT_TRACKS]
    indexes = range(len(names)) if track is None else [names.index(track)]
    channels = [
        pygame.mixer.Channel(i * (VOICES_PER_TRACK + WET_VOICES) + j)
        for i in indexes
        for j in range(VOICES_PER_TRACK)
    ]
    return [channel for channel in channels if channel.get_busy()]


def sounding(track: str | None = None) -> int:
    """How many voices are sounding (on one track, or on all of them)."""
    return len(busy_channels(track))


AUDIBLE = 0.01  # RMS: a played note is well above it
SILENT = 0.001  # peak: the mixer outputs exact zeros when nothing plays


def test_playing_notes_makes_sound(speakers: Speakers) -> None:
    before = speakers.listen(0.1)
    assert np.abs(before).max() < SILENT
    speakers.out.note_on(on("drums", 36))
    speakers.out.note_on(on("bass", 43))
    assert rms(speakers.listen(0.25)) > AUDIBLE


def test_a_higher_note_sounds_higher(speakers: Speakers) -> None:
    heard = {}
    for note in (40, 45):
        speakers.out.note_on(on("bass", note))
        time.sleep(0.06)  # past the filter's bright attack
        heard[note] = dominant_hz(speakers.listen(0.35), speakers.rate)
        speakers.out.note_off(off("bass", note))
        time.sleep(0.1)
    assert heard[45] > heard[40]
    # And each at its own pitch: E2 = 82.4 Hz, A2 = 110 Hz (within 30 cents).
    assert abs(cents(heard[40], midi_hz(40))) < 30, heard
    assert abs(cents(heard[45], midi_hz(45))) < 30, heard


def test_panic_silences_everything_at_once(speakers: Speakers) -> None:
    out = speakers.out
    for note in (on("pad", 60), on("chords", 64), on("drums", 49), on("drums", 46)):
        out.note_on(note)
    assert rms(speakers.listen(0.15)) > AUDIBLE
    out.panic()
    time.sleep(0.08)  # the 10 ms fade, a mixer buffer and the file's stdio buffer
    assert np.abs(speakers.listen(0.2)).max() < SILENT
    assert sounding() == 0


def test_mute_silences_everything_and_unmute_brings_back_the_notes_still_sounding(
    speakers: Speakers,
) -> None:
    out = speakers.out
    out.note_on(on("chords", 67))
    assert rms(speakers.listen(0.12)) > AUDIBLE
    out.set_muted(True)
    busy = busy_channels()
    assert busy and all(channel.get_volume() == 0.0 for channel in busy)
    time.sleep(0.06)
    out.note_on(on("drums", 36))  # played while muted: tracked, not heard
    assert np.abs(speakers.listen(0.15)).max() < SILENT
    assert sounding() == 2
    out.set_muted(False)
    time.sleep(0.02)
    assert rms(speakers.listen(0.12)) > AUDIBLE


def test_a_stopped_note_fades_out_but_a_drum_rings_on(speakers: Speakers) -> None:
    out = speakers.out
    out.note_on(on("chords", 67))
    time.sleep(0.08)
    out.note_off(off("chords", 67))
    time.sleep(0.25)  # the keys' 150 ms release, and some
    assert np.abs(speakers.listen(0.12)).max() < SILENT
    out.note_on(on("drums", 49))
    out.note_off(off("drums", 49))  # a crash cymbal has no note-off
    time.sleep(0.05)
    assert rms(speakers.listen(0.15)) > AUDIBLE


def test_unknown_tracks_and_bad_notes_are_ignored_and_logged_once(
    speakers: Speakers, caplog: pytest.LogCaptureFixture
) -> None:
    out = speakers.out
    with caplog.at_level(logging.WARNING, logger="billboard.sound"):
        for _ in range(3):
            out.note_on(on("theremin", 60))
            out.note_off(off("theremin", 60))
            out.note_on(on("bass", 128))
            out.note_on(on("bass", -1))
            out.note_off(off("lead", 300))
            out.prepare(on("nowhere", 60))
    assert sounding() == 0
    assert sum("theremin" in r.getMessage() for r in caplog.records) == 1
    out.note_on(on("bass", 0))  # extremes of MIDI still play, however far from a root
    out.note_on(on("bells", 127))
    out.note_on(on("lead", 60, velocity=0))  # a note-on at velocity 0 is a note-off
    assert sounding() == 2


def test_a_drum_note_the_kit_lacks_plays_a_stand_in(speakers: Speakers) -> None:
    speakers.out.note_on(on("drums", 44))  # pedal hi-hat: the kit has none
    speakers.out.note_on(on("percussion", 20))  # far below every percussion note
    assert sounding() == 2
    assert rms(speakers.listen(0.1)) > AUDIBLE


def test_a_flood_of_notes_steals_only_that_tracks_own_voices(speakers: Speakers) -> None:
    out = speakers.out
    out.note_on(on("pad", 60))
    for note in range(60, 80):
        out.note_on(on("pluck", note))
    assert sounding("pluck") <= 6
    assert sounding("pad") == 1


def test_the_latency_is_the_mixer_buffer(speakers: Speakers) -> None:
    assert speakers.out.latency_ms == pytest.approx(1000 * 256 / speakers.rate)


def test_a_mixer_that_cannot_open_is_an_oserror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-audio-driver")
    try:
        with pytest.raises(OSError, match="no-such-audio-driver"):
            SoundOut(SOUNDS, DEFAULT_TRACKS)
    finally:
        pygame.mixer.quit()


# -- the mix -----------------------------------------------------------------------


def test_a_track_panned_right_is_louder_on_the_right(mixed_speakers: Speakers) -> None:
    bells = next(t for t in DEFAULT_TRACKS if t.name == "bells")
    assert bells.pan > 0
    mixed_speakers.out.note_on(on("bells", 84))
    heard = mixed_speakers.listen(0.3, each=True)
    left, right = rms(heard[:, 0]), rms(heard[:, 1])
    assert right > AUDIBLE and left < right * 0.7


def test_the_reverb_and_delay_ring_on_after_the_note_off(mixed_speakers: Speakers) -> None:
    out = mixed_speakers.out
    out.note_on(on("lead", 76))
    time.sleep(0.1)
    out.note_off(off("lead", 76))
    time.sleep(0.25)  # the dry voice's release is long over
    assert sounding("lead") == 0
    assert rms(mixed_speakers.listen(0.3)) > SILENT  # the room and the echoes
    out.panic()
    time.sleep(0.05)
    assert np.abs(mixed_speakers.listen(0.15)).max() < SILENT  # a panic silences them too
