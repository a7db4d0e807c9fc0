"""The offline render: the engine's notes mixed as the live speakers play them, with the
same samples, the same voicing rules and the same mix (pan, fader, reverb and delay
sends), into stereo float32 arrays. Pure: no mixer.

Most sentences are about voices, so they play the tracks dry and centred (`DRY`); the
mix's own sentences give the tracks their pans, faders and sends."""

from __future__ import annotations

import wave
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from billboard.engine.events import Note, NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS, TrackSpec
from billboard.mix import WET_MAX_SECONDS, step_seconds
from billboard.render import RATE, Stereo, render, write_wav
from billboard.samples import SampleSet, load_sample_sets
from billboard.voicing import MASTER_GAIN, PANIC_FADE_MS, VOICES_PER_TRACK, velocity_gain
from tests.billboard.audio import cents, dominant_hz, midi_hz, rms

SOUNDS = Path(__file__).resolve().parents[2] / "sounds"
DRY = tuple(replace(t, pan=0.0, gain_db=0.0, reverb=0.0, delay=0.0) for t in DEFAULT_TRACKS)


@pytest.fixture(scope="module")
def sets() -> dict[str, SampleSet]:
    return load_sample_sets(SOUNDS)


def on(time: float, track: str, note: int, velocity: int = 127) -> NoteOn:
    return NoteOn(time=time, step=0, track=track, channel=0, note=note, velocity=velocity)


def off(time: float, track: str, note: int) -> NoteOff:
    return NoteOff(time=time, step=0, track=track, channel=0, note=note)


def frame(seconds: float) -> int:
    return round(seconds * RATE)


def play(
    sets: dict[str, SampleSet],
    notes: Sequence[Note],
    tracks: Sequence[TrackSpec] = DRY,
    **kwargs: object,
) -> Stereo:
    return render(notes, sets, tracks, **kwargs)  # type: ignore[arg-type]


def mixed(name: str, **mix: float) -> tuple[TrackSpec, ...]:
    """The dry tracks, with `name`'s mix set to `mix`."""
    return tuple(replace(t, **mix) if t.name == name else t for t in DRY)


def test_a_drum_note_lands_at_its_time_with_its_samples_energy(
    sets: dict[str, SampleSet],
) -> None:
    audio = play(sets, [on(0.5, "drums", 36, velocity=100)])
    left = audio[:, 0].astype(np.float64)
    start = frame(0.5)
    assert not left[:start].any()  # nothing before the note: exact zeros
    assert left[start] != 0.0 or left[start + 1] != 0.0
    hit = sets["kit"].drums[36]
    volume = MASTER_GAIN * sets["kit"].gain * hit.gain * velocity_gain(100)
    expected = np.sum((volume * hit.samples.astype(np.float64)) ** 2)
    assert np.sum(left**2) == pytest.approx(expected, rel=1e-4)
    assert len(audio) == start + len(hit.samples)  # the output ends as the sound does


def test_a_pitched_note_sounds_at_its_frequency(sets: dict[str, SampleSet]) -> None:
    for note in (40, 45, 52):  # E2, A2, E3 on the bass: zones at 43 and 55, resampled
        audio = play(sets, [on(0.0, "bass", note)])
        heard = dominant_hz(audio[frame(0.06) : frame(0.5), 0].astype(np.float64))
        assert abs(cents(heard, midi_hz(note))) < 30, (note, heard)


def test_a_note_off_ends_a_voice_with_its_sets_release(sets: dict[str, SampleSet]) -> None:
    held = play(sets, [on(0.0, "chords", 67)])
    stopped = play(sets, [on(0.0, "chords", 67), off(0.2, "chords", 67)])
    release_s = sets["keys"].release_ms / 1000
    assert rms(held[frame(0.3) :, 0].astype(np.float64)) > 0.01  # it would ring on
    assert not stopped[frame(0.2 + release_s) + 1 :].any()  # faded out, then silent
    # Up to the note-off the two are the same note; the release fades from there.
    assert np.array_equal(stopped[: frame(0.2)], held[: frame(0.2)])
    fading = np.abs(stopped[frame(0.2) : frame(0.2 + release_s), 0])
    assert 0 < fading.max() <= np.abs(held[frame(0.2) : frame(0.2 + release_s), 0]).max()


def test_a_drum_rings_on_through_its_note_off(sets: dict[str, SampleSet]) -> None:
    rung = play(sets, [on(0.0, "drums", 49)])
    offed = play(sets, [on(0.0, "drums", 49), off(0.05, "drums", 49)])
    assert np.array_equal(rung, offed)


def test_a_tracks_seventh_note_steals_its_oldest_voice_and_spares_other_tracks(
    sets: dict[str, SampleSet],
) -> None:
    """Six pad notes take the pad's six voices; taking the last fades the oldest, so
    the seventh finds it free, and the next oldest fades to keep a voice in hand. The
    bass, another track, goes on sounding. Mixing is linear, so what the pad plays
    after the seventh note is the sum of the notes heard alone that still sound."""
    assert VOICES_PER_TRACK == 6
    times = [0.1 * n for n in range(7)]
    pads = [on(t, "pad", 55 + n) for n, t in enumerate(times)]
    bass = on(0.0, "bass", 43)
    both = play(sets, [bass, *pads])
    alone = [play(sets, [note]) for note in (bass, *pads)]
    window = slice(frame(times[6] + 0.03), frame(times[6] + 0.3))

    def summed(indexes: Sequence[int]) -> Stereo:
        return np.sum([alone[i][window] for i in indexes], axis=0)  # type: ignore[no-any-return]

    assert np.allclose(both[window], summed([0, 3, 4, 5, 6, 7]), atol=1e-5)
    assert rms(alone[1][window, 0].astype(np.float64)) > 0.01  # the oldest still rang alone
    assert rms(alone[0][window, 0].astype(np.float64)) > 0.01  # and so does the bass


def test_a_note_restarted_or_a_hat_choked_fades_the_old_voice(
    sets: dict[str, SampleSet],
) -> None:
    open_hat = play(sets, [on(0.0, "drums", 46)])
    choked = play(sets, [on(0.0, "drums", 46), on(0.1, "drums", 42)])
    closed = play(sets, [on(0.1, "drums", 42)])
    after = slice(frame(0.1 + 0.025), frame(0.3))  # past the 20 ms fade
    assert rms(open_hat[after, 0].astype(np.float64)) > 0.005
    assert np.allclose(choked[after], closed[after], atol=1e-6)


def test_a_panic_fades_everything_at_once(sets: dict[str, SampleSet]) -> None:
    notes = [on(0.0, "pad", 60), on(0.0, "drums", 49), on(0.0, "bells", 84)]
    audio = play(sets, notes, panics=[0.2])
    assert rms(audio[frame(0.1) : frame(0.2), 0].astype(np.float64)) > 0.01
    assert not audio[frame(0.2 + PANIC_FADE_MS / 1000) + 1 :].any()


def test_the_same_notes_render_to_the_same_audio(sets: dict[str, SampleSet]) -> None:
    notes = [on(0.01 * n, DEFAULT_TRACKS[n % 8].name, 40 + 3 * n, 60 + n) for n in range(30)]
    first = play(sets, notes, until=2.0)
    assert np.array_equal(first, play(sets, list(notes), until=2.0))


def test_the_output_is_stereo_float32_with_a_centred_track_alike_on_both_speakers(
    sets: dict[str, SampleSet],
) -> None:
    notes = [on(0.0, "drums", 38), on(0.0, "bass", 43)]
    audio = play(sets, notes, until=3.0)
    assert audio.dtype == np.float32 and audio.ndim == 2 and audio.shape[1] == 2
    assert len(audio) == frame(3.0)  # `until` is later than every sound's end
    assert np.array_equal(audio[:, 0], audio[:, 1])


def test_a_panned_track_keeps_its_level_on_its_side_and_less_on_the_other(
    sets: dict[str, SampleSet],
) -> None:
    notes = [on(0.0, "drums", 38), on(0.0, "bass", 43)]
    centre = play(sets, notes, until=3.0)
    hard_left = play(sets, notes, mixed("bass", pan=-1.0), until=3.0)
    drums_only = play(sets, notes[:1], until=3.0)
    assert np.array_equal(hard_left[:, 1], drums_only[:, 1])  # the bass left the right
    assert np.allclose(hard_left[:, 0], centre[:, 0], atol=1e-6)  # and stays on the left
    half_right = play(sets, notes[1:], mixed("bass", pan=0.5), until=3.0)
    bass = play(sets, notes[1:], until=3.0)
    assert np.allclose(half_right[:, 1], bass[:, 1], atol=1e-6)
    assert np.allclose(half_right[:, 0], 0.5 * bass[:, 0], atol=1e-6)


def test_a_tracks_fader_turns_it_down_and_never_up(sets: dict[str, SampleSet]) -> None:
    notes = [on(0.0, "bass", 43)]
    bass = play(sets, notes, until=1.0)
    down = play(sets, notes, mixed("bass", gain_db=-6.0), until=1.0)
    assert np.allclose(down, bass * 10 ** (-6 / 20), atol=1e-6)
    assert np.array_equal(play(sets, notes, mixed("bass", gain_db=12.0), until=1.0), bass)


def test_the_reverb_rings_on_after_the_note_off_and_differs_between_the_speakers(
    sets: dict[str, SampleSet],
) -> None:
    notes = [on(0.0, "lead", 76), off(0.25, "lead", 76)]
    dry = play(sets, notes)
    wet = play(sets, notes, mixed("lead", reverb=0.3))
    release_s = sets["lead"].release_ms / 1000
    assert not dry[frame(0.25 + release_s) + 1 :].any()  # dry: gone after its release
    tail = wet[frame(0.5) : frame(1.0)].astype(np.float64)
    assert rms(tail[:, 0]) > 1e-3 and rms(tail[:, 1]) > 1e-3  # the room rings on
    assert not np.allclose(tail[:, 0], tail[:, 1], atol=1e-4)  # wide, not mono
    assert len(wet) < frame(0.25 + release_s + WET_MAX_SECONDS) + 2  # and dies away


def test_the_delay_echoes_on_the_beat_grid_and_follows_the_tempo(
    sets: dict[str, SampleSet],
) -> None:
    """A dotted 8th later on the left, a quarter later on the right: 3 and 4 sixteenths,
    at the tempo the note was played at."""
    tracks = mixed("pluck", delay=0.5)

    def first_echo(audio: Stereo, side: int, after: float) -> float:
        loud = np.flatnonzero(np.abs(audio[frame(after) :, side]) > 1e-3)
        return (int(loud[0]) + frame(after)) / RATE

    notes = [on(0.0, "pluck", 67), off(0.05, "pluck", 67)]
    release_s = sets["pluck"].release_ms / 1000
    quiet = 0.05 + release_s + 0.01  # the dry note is over by then
    at_120 = play(sets, notes, tracks, bpm=120.0)
    assert first_echo(at_120, 0, quiet) == pytest.approx(3 * step_seconds(120), abs=0.003)
    assert first_echo(at_120, 1, quiet) == pytest.approx(4 * step_seconds(120), abs=0.003)
    later = [on(1.0, "pluck", 67), off(1.05, "pluck", 67)]
    at_90 = play(sets, later, tracks, bpm=120.0, tempi=[(0.5, 90.0)])
    assert first_echo(at_90, 0, 1.0 + quiet) == pytest.approx(1.0 + 3 * step_seconds(90), abs=0.003)


def test_unknown_tracks_and_notes_beyond_midi_are_silent(
    sets: dict[str, SampleSet], caplog: pytest.LogCaptureFixture
) -> None:
    audio = play(sets, [on(0.0, "theremin", 60), on(0.0, "bass", 128)], until=0.5)
    assert len(audio) == frame(0.5) and not audio.any()
    assert any("theremin" in r.getMessage() for r in caplog.records)


def test_a_mix_louder_than_full_scale_is_kept_and_clipped_only_in_the_file(
    sets: dict[str, SampleSet], tmp_path: Path
) -> None:
    notes = [on(0.0, t, n) for t in ("drums", "percussion") for n in range(35, 82)]
    audio = play(sets, notes)
    over = int(np.count_nonzero(np.abs(audio) > 1.0))
    assert over > 0  # render never clips: the loudness can be measured on it
    path = tmp_path / "loud.wav"
    assert write_wav(path, audio) == over
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    assert len(pcm) == len(audio)
    assert pcm.max() == 32767 and pcm.min() >= -32768
