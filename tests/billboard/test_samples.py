"""The billboard's sample library: the samples ``sounds/make_sounds.py`` generates, as
the manifest lists them, and the pure helpers that turn a sample into a note."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.samples import Zone, drum_note, load_sample_sets, nearest_zone, resample
from tests.billboard.audio import RATE, cents, dominant_hz, midi_hz, rms

ROOT = Path(__file__).resolve().parents[2]
SOUNDS = ROOT / "sounds"
MAKE_SOUNDS = SOUNDS / "make_sounds.py"

KIT_NOTES = {36, 37, 38, 39, 42, 45, 46, 49, 50, 51}
PERC_NOTES = {54, 56, 60, 61, 62, 64, 67, 70, 75, 81}
PITCHED_SETS = {"bass", "keys", "lead", "pluck", "pad", "bell"}


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
