"""The billboard's sound: the generated samples, and SoundOut on a real SDL mixer.

The mixer tests open pygame.mixer on SDL's "disk" audio driver, which writes the mixed
output, raw and in the mixer's own format, to a file at the pace of a sound card: what
the speakers would have played. No sound card is needed.
"""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pygame
import pytest

from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.sound import (
    SoundOut,
    Zone,
    drum_note,
    load_sample_sets,
    nearest_zone,
    resample,
    velocity_gain,
)

ROOT = Path(__file__).resolve().parents[2]
SOUNDS = ROOT / "sounds"
MAKE_SOUNDS = SOUNDS / "make_sounds.py"
RATE = 44100
Audio = npt.NDArray[np.float64]

KIT_NOTES = {36, 37, 38, 39, 42, 45, 46, 49, 50, 51}
PERC_NOTES = {54, 56, 60, 61, 62, 64, 67, 70, 75, 81}
PITCHED_SETS = {"bass", "keys", "lead", "pluck", "pad", "bell"}


def midi_hz(note: float) -> float:
    return float(440.0 * 2.0 ** ((note - 69) / 12))


def dominant_hz(audio: Audio, rate: int = RATE, lowest: float = 30.0) -> float:
    """The frequency of the strongest spectral peak (Hann window, zero-padded FFT)."""
    size = 1 << 20
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), size))
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    spectrum[freqs < lowest] = 0.0
    return float(freqs[int(np.argmax(spectrum))])


def cents(hz: float, reference: float) -> float:
    return float(1200.0 * np.log2(hz / reference))


def rms(audio: Audio) -> float:
    return float(np.sqrt(np.mean(audio**2))) if audio.size else 0.0


WavFormat = tuple[int, int, int, int]  # channels, bytes per sample, rate, frames


def read_wav(path: Path) -> tuple[WavFormat, npt.NDArray[np.int16]]:
    with wave.open(str(path), "rb") as source:
        params = source.getparams()
        data = np.frombuffer(source.readframes(params.nframes), dtype="<i2")
    return (params.nchannels, params.sampwidth, params.framerate, params.nframes), data


def manifest_files(manifest: dict[str, object]) -> list[str]:
    sets = manifest["sets"]
    assert isinstance(sets, dict)
    files = []
    for entry in sets.values():
        if entry["kind"] == "drums":
            files += [hit["file"] for hit in entry["notes"].values()]
        else:
            files += [zone["file"] for zone in entry["zones"]]
    return files


MANIFEST = json.loads((SOUNDS / "manifest.json").read_text(encoding="utf-8"))


# -- the generated samples ---------------------------------------------------------


def test_the_manifest_has_every_sample_set_the_default_tracks_use_and_every_file_exists() -> None:
    used = {spec.samples for spec in DEFAULT_TRACKS}
    assert used <= set(MANIFEST["sets"])
    for file in manifest_files(MANIFEST):
        (channels, width, rate, _), _ = read_wav(SOUNDS / file)
        assert (channels, width, rate) == (1, 2, RATE), file
    assert MANIFEST["license"] == "CC0-1.0"


def test_the_drum_sets_map_the_general_midi_drum_notes() -> None:
    assert {int(n) for n in MANIFEST["sets"]["kit"]["notes"]} == KIT_NOTES
    assert {int(n) for n in MANIFEST["sets"]["perc"]["notes"]} == PERC_NOTES


def test_each_pitched_set_states_its_roots_and_how_it_sustains() -> None:
    for name in PITCHED_SETS:
        entry = MANIFEST["sets"][name]
        assert entry["kind"] == "pitched"
        assert entry["zones"] and all(0 <= zone["root"] <= 127 for zone in entry["zones"])
        assert isinstance(entry["loop"], bool) and isinstance(entry["sustain"], bool)
        assert entry["release_ms"] > 0


def test_every_sample_peaks_near_minus_3_dbfs_and_starts_and_ends_in_silence() -> None:
    for file in manifest_files(MANIFEST):
        (_, _, rate, frames), data = read_wav(SOUNDS / file)
        peak_db = 20 * np.log10(np.abs(data.astype(np.float64)).max() / 32768)
        assert -3.5 < peak_db < -2.5, file
        # Short fades at both ends: no click when a sample starts or runs out.
        assert abs(int(data[0])) <= 4 and abs(int(data[-1])) <= 4, file
        seconds = frames / rate
        assert seconds < (1.0 if file.startswith(("kit_", "perc_")) else 3.0), file


def test_each_pitched_sample_sounds_its_stated_root() -> None:
    for name in PITCHED_SETS:
        for zone in MANIFEST["sets"][name]["zones"]:
            _, data = read_wav(SOUNDS / zone["file"])
            heard = dominant_hz(data.astype(np.float64))
            # 25 cents: the lead's and pad's detuned voices sit up to 15 cents off.
            assert abs(cents(heard, midi_hz(zone["root"]))) < 25, (zone, heard)


def test_the_samples_stay_small() -> None:
    total = sum(path.stat().st_size for path in SOUNDS.glob("*.wav"))
    assert total < 3_000_000


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """make_sounds.py run twice, each into its own empty directory."""
    dirs = (tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second"))
    for out in dirs:
        subprocess.run(
            [sys.executable, str(MAKE_SOUNDS), "--out", str(out)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return dirs


def test_make_sounds_writes_byte_identical_files_run_after_run(two_runs: tuple[Path, Path]) -> None:
    first, second = two_runs
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert "manifest.json" in names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_the_committed_samples_are_what_make_sounds_writes(two_runs: tuple[Path, Path]) -> None:
    fresh, _ = two_runs
    committed = sorted(p.name for p in SOUNDS.iterdir() if p.suffix in {".wav", ".json"})
    assert committed == sorted(p.name for p in fresh.iterdir())  # nothing stale, nothing missing
    assert (SOUNDS / "manifest.json").read_bytes() == (fresh / "manifest.json").read_bytes()
    for name in committed:
        if name.endswith(".wav"):
            old_params, old = read_wav(SOUNDS / name)
            new_params, new = read_wav(fresh / name)
            assert old_params == new_params, name
            # Byte-identical on the machine that generated them; another CPU's libm may
            # round a sine differently in the last bit, hence 1 LSB of slack.
            assert np.abs(old.astype(np.int32) - new).max() <= 1, name


# -- pure helpers ------------------------------------------------------------------


def test_resampling_by_an_octave_doubles_or_halves_the_pitch_and_the_length() -> None:
    t = np.arange(RATE, dtype=np.float64) / RATE
    tone = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    up, down = resample(tone, 2.0), resample(tone, 0.5)
    assert abs(cents(dominant_hz(up.astype(np.float64)), 880.0)) < 2
    assert abs(cents(dominant_hz(down.astype(np.float64)), 220.0)) < 2
    assert abs(len(up) - RATE / 2) <= 1 and abs(len(down) - 2 * RATE) <= 2


def test_a_tone_pitched_above_nyquist_is_filtered_out_not_folded_back() -> None:
    t = np.arange(RATE // 2, dtype=np.float64) / RATE
    tone = np.sin(2 * np.pi * 15000.0 * t).astype(np.float32)
    # Two octaves up, 15 kHz would be 60 kHz: it must vanish, not alias to a low whine.
    assert rms(resample(tone, 4.0).astype(np.float64)[200:-200]) < 0.01


def test_a_very_low_note_is_cut_to_max_frames_and_faded() -> None:
    tone = np.ones(RATE, dtype=np.float32)
    out = resample(tone, 0.25, max_frames=RATE)
    assert len(out) == RATE and out[-1] == 0.0 and out[RATE // 2] == pytest.approx(1.0)


def test_unknown_drum_notes_fall_back_to_a_stand_in_or_the_nearest_drum() -> None:
    kit, perc = KIT_NOTES, PERC_NOTES
    assert drum_note(kit, 38) == 38
    assert drum_note(kit, 44) == 42  # pedal hat → closed hat
    assert drum_note(kit, 35) == 36  # acoustic bass drum → kick
    assert drum_note(kit, 57) == 49  # crash 2 → crash
    assert drum_note(perc, 63) == 62  # open hi conga → hi conga
    assert drum_note(perc, 80) == 81  # mute triangle → triangle
    assert drum_note(kit, 0) == 36 and drum_note(kit, 127) == 51  # the nearest
    assert drum_note(set(), 36) is None


def test_the_nearest_zone_plays_a_note_and_a_tie_goes_to_the_higher_root() -> None:
    empty = np.zeros(1, dtype=np.float32)
    zones = [Zone(43, empty), Zone(55, empty)]
    assert nearest_zone(zones, 40).root == 43
    assert nearest_zone(zones, 48).root == 43
    assert nearest_zone(zones, 49).root == 55  # six from each: resample down, not up
    assert nearest_zone(zones, 90).root == 55


def test_louder_velocities_play_louder() -> None:
    gains = [velocity_gain(v) for v in range(128)]
    assert gains[0] == 0.0 and gains[127] == 1.0
    assert all(a < b for a, b in itertools.pairwise(gains))


def test_a_missing_or_broken_manifest_is_an_oserror_that_names_it(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"manifest\.json"):
        load_sample_sets(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(OSError, match=r"manifest\.json"):
        load_sample_sets(tmp_path)
    (tmp_path / "manifest.json").write_text(
        json.dumps({"sets": {"kit": {"kind": "drums", "notes": {"36": {"file": "gone.wav"}}}}}),
        encoding="utf-8",
    )
    with pytest.raises(OSError, match=r"gone\.wav"):
        load_sample_sets(tmp_path)


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
        frame = 2 * self.channels
        with self.path.open("rb") as raw:
            raw.seek(start * frame)
            data = raw.read((end - start) * frame)
        pcm = np.frombuffer(data[: len(data) // frame * frame], dtype=np.int16)
        mono: Audio = pcm.reshape(-1, self.channels).mean(axis=1) / 32768.0
        return mono

    def listen(self, seconds: float) -> Audio:
        """The next `seconds` of output."""
        start = self.position()
        time.sleep(seconds)
        audio = self.read(start, self.position())
        assert len(audio) > seconds * self.rate / 2, "the disk audio driver stalled"
        return audio


@pytest.fixture
def speakers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Speakers]:
    raw = tmp_path / "speakers.raw"
    # Set before the mixer opens: SDL reads them when its audio subsystem starts, and
    # SoundOut closes any mixer opened earlier in this process.
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(raw))
    out = SoundOut(SOUNDS, DEFAULT_TRACKS)
    try:
        yield Speakers(raw, out)
    finally:
        out.close()
        pygame.mixer.quit()


def on(track: str, note: int, velocity: int = 127) -> NoteOn:
    return NoteOn(time=0.0, step=0, track=track, channel=0, note=note, velocity=velocity)


def off(track: str, note: int) -> NoteOff:
    return NoteOff(time=0.0, step=0, track=track, channel=0, note=note)


AUDIBLE = 0.01  # RMS: a played note is well above it
SILENT = 0.001  # peak: the mixer outputs exact zeros when nothing plays


def test_playing_notes_makes_sound(speakers: Speakers) -> None:
    before = speakers.listen(0.1)
    assert np.abs(before).max() < SILENT
    speakers.out.play(on("drums", 36))
    speakers.out.note_on(on("bass", 43))  # the scheduler's NoteSink name for play
    assert rms(speakers.listen(0.25)) > AUDIBLE


def test_a_higher_note_sounds_higher(speakers: Speakers) -> None:
    heard = {}
    for note in (40, 45):
        speakers.out.play(on("bass", note))
        time.sleep(0.06)  # past the filter's bright attack
        heard[note] = dominant_hz(speakers.listen(0.35), speakers.rate)
        speakers.out.stop(off("bass", note))
        time.sleep(0.1)
    assert heard[45] > heard[40]
    # And each at its own pitch: E2 = 82.4 Hz, A2 = 110 Hz (within 30 cents).
    assert abs(cents(heard[40], midi_hz(40))) < 30, heard
    assert abs(cents(heard[45], midi_hz(45))) < 30, heard


def test_panic_silences_everything_at_once(speakers: Speakers) -> None:
    out = speakers.out
    for note in (on("pad", 60), on("chords", 64), on("drums", 49), on("drums", 46)):
        out.play(note)
    assert rms(speakers.listen(0.15)) > AUDIBLE
    out.panic()
    time.sleep(0.08)  # the 10 ms fade, a mixer buffer and the file's stdio buffer
    assert np.abs(speakers.listen(0.2)).max() < SILENT
    assert out.active_voices() == 0


def test_mute_silences_everything_and_unmute_brings_back_the_notes_still_sounding(
    speakers: Speakers,
) -> None:
    out = speakers.out
    out.play(on("chords", 67))
    assert rms(speakers.listen(0.12)) > AUDIBLE
    out.set_muted(True)
    assert out.muted
    time.sleep(0.06)
    out.play(on("drums", 36))  # played while muted: tracked, not heard
    assert np.abs(speakers.listen(0.15)).max() < SILENT
    assert out.active_voices() == 2
    out.set_muted(False)
    time.sleep(0.02)
    assert rms(speakers.listen(0.12)) > AUDIBLE


def test_a_stopped_note_fades_out_but_a_drum_rings_on(speakers: Speakers) -> None:
    out = speakers.out
    out.play(on("chords", 67))
    time.sleep(0.08)
    out.stop(off("chords", 67))
    time.sleep(0.25)  # the keys' 150 ms release, and some
    assert np.abs(speakers.listen(0.12)).max() < SILENT
    out.play(on("drums", 49))
    out.stop(off("drums", 49))  # a crash cymbal has no note-off
    time.sleep(0.05)
    assert rms(speakers.listen(0.15)) > AUDIBLE


def test_unknown_tracks_and_bad_notes_are_ignored_and_logged_once(
    speakers: Speakers, caplog: pytest.LogCaptureFixture
) -> None:
    out = speakers.out
    with caplog.at_level(logging.WARNING, logger="billboard.sound"):
        for _ in range(3):
            out.play(on("theremin", 60))
            out.stop(off("theremin", 60))
            out.play(on("bass", 128))
            out.play(on("bass", -1))
            out.stop(off("lead", 300))
            out.prepare(on("nowhere", 60))
    assert out.active_voices() == 0
    assert sum("theremin" in r.getMessage() for r in caplog.records) == 1
    out.play(on("bass", 0))  # extremes of MIDI still play, however far from a root
    out.play(on("bells", 127))
    out.play(on("lead", 60, velocity=0))  # a note-on at velocity 0 is a note-off
    assert out.active_voices() == 2


def test_a_drum_note_the_kit_lacks_plays_a_stand_in(speakers: Speakers) -> None:
    speakers.out.play(on("drums", 44))  # pedal hi-hat: the kit has none
    speakers.out.play(on("percussion", 20))  # far below every percussion note
    assert speakers.out.active_voices() == 2
    assert rms(speakers.listen(0.1)) > AUDIBLE


def test_a_flood_of_notes_steals_only_that_tracks_own_voices(speakers: Speakers) -> None:
    out = speakers.out
    out.play(on("pad", 60))
    for note in range(60, 80):
        out.play(on("pluck", note))
    assert out.active_voices("pluck") <= 6
    assert out.active_voices("pad") == 1


def test_the_latency_is_the_mixer_buffer(speakers: Speakers) -> None:
    assert speakers.out.latency_ms == pytest.approx(1000 * 256 / speakers.rate)


def test_a_mixer_that_cannot_open_is_an_oserror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-audio-driver")
    try:
        with pytest.raises(OSError, match="no-such-audio-driver"):
            SoundOut(SOUNDS, DEFAULT_TRACKS)
    finally:
        pygame.mixer.quit()
