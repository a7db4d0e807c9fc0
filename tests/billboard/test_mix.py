"""The speakers' mix, pure: pans, faders, what a track's reverb and delay send back for
a note, and the render's master limiter."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.signal import resample_poly

from billboard.engine.tracks import DEFAULT_TRACKS, TrackSpec
from billboard.mix import (
    CEILING_DB,
    WET_MAX_SECONDS,
    dry,
    gain,
    master,
    note_frames,
    placed,
    speakers,
    step_seconds,
    wet,
)

RATE = 44100


def track(**mix: float) -> TrackSpec:
    """A track dry and centred, but for `mix` (pan, gain_db, reverb, delay)."""
    flat = {"pan": 0.0, "gain_db": 0.0, "reverb": 0.0, "delay": 0.0}
    return replace(DEFAULT_TRACKS[0], **{**flat, **mix})


def tone(seconds: float, hz: float = 440.0, level: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def true_peak_db(audio: np.ndarray) -> float:
    """4× oversampled peak, as BS.1770-4 measures it."""
    over = resample_poly(audio.astype(np.float64), 4, 1, axis=0)
    return float(20 * np.log10(np.max(np.abs(over))))


def test_the_centre_plays_at_full_level_on_both_speakers_and_a_pan_turns_one_down() -> None:
    assert speakers(track()) == (1.0, 1.0)
    assert speakers(track(pan=0.5)) == (0.5, 1.0)
    assert speakers(track(pan=-1.0)) == (1.0, 0.0)
    assert speakers(track(pan=-7.0)) == (1.0, 0.0)  # beyond the end: the end
    panned = dry(tone(0.1), track(pan=-0.25))
    assert np.array_equal(panned[:, 0], tone(0.1))
    assert np.allclose(panned[:, 1], 0.75 * tone(0.1))


def test_a_kits_hats_sit_right_of_its_kick_and_its_crash_left() -> None:
    kit = track(pan=0.1, reverb=0.2)
    assert placed(kit, 36) == kit  # the kick stays where the track is
    assert placed(kit, 42).pan > kit.pan > placed(kit, 49).pan
    assert placed(kit, 42).reverb == kit.reverb
    assert placed(track(pan=0.9), 51).pan == 1.0  # never beyond the right
    assert placed(kit, None) == kit  # a pitched note


def test_a_fader_only_turns_down() -> None:
    assert gain(track(gain_db=-6.0)) == 10 ** (-6 / 20)
    assert gain(track(gain_db=6.0)) == 1.0


def test_a_track_that_sends_nothing_has_no_wet_sound() -> None:
    assert wet(tone(0.2), track(pan=0.3), RATE, 120.0, None) is None
    assert wet(np.zeros(0, np.float32), track(reverb=0.5), RATE, 120.0, None) is None


def test_the_reverb_of_a_note_cut_short_rings_on_and_dies_away_within_the_cap() -> None:
    note = note_frames(2, 120.0, 80, RATE)  # two 16ths and the release
    assert note == round((2 * step_seconds(120.0) + 0.08) * RATE)
    room = wet(tone(2.0), track(reverb=0.3), RATE, 120.0, note)
    assert room is not None and room.shape[1] == 2
    assert len(room) <= note + WET_MAX_SECONDS * RATE
    after = room[note + RATE // 10 : note + RATE // 2]
    assert np.sqrt(np.mean(after**2)) > 1e-3  # the room rings after the note
    assert not np.allclose(after[:, 0], after[:, 1], atol=1e-4)  # wide


def test_the_delay_repeats_the_note_on_the_grid_each_time_quieter() -> None:
    click = np.zeros(100, np.float32)
    click[0] = 1.0
    echoes = wet(click, track(delay=0.5), RATE, 120.0, None)
    assert echoes is not None
    step = step_seconds(120.0) * RATE
    for side, steps in ((0, 3), (1, 4)):
        first, second = round(steps * step), round(2 * steps * step)
        column = np.abs(echoes[:, side])
        assert column[first - 2 : first + 3].max() > 0.2
        assert 0 < column[second - 2 : second + 3].max() < column[first - 2 : first + 3].max()
        assert column[: first - 2].max() < 1e-6  # nothing before the first echo


def test_the_master_keeps_true_peaks_under_minus_one_dbtp_and_says_how_hard_it_worked() -> None:
    loud = np.stack([tone(1.0, 997, 1.4), tone(1.0, 1003, 1.4)], axis=1)
    limited = master(loud, RATE)
    assert true_peak_db(limited.audio) <= -1.0
    assert limited.most_db > 3.0 and limited.blocks_pct > 90.0
    assert len(limited.audio) == len(loud)


def test_a_mix_under_the_ceiling_passes_the_master_untouched() -> None:
    quiet = np.stack([tone(1.0, 220, 0.3), tone(1.0, 330, 0.3)], axis=1)
    limited = master(quiet, RATE)
    assert limited.blocks_pct == 0.0 and limited.most_db < 0.5
    middle = slice(RATE // 10, RATE * 9 // 10)  # the limiter's look-ahead is compensated
    assert np.allclose(limited.audio[middle], quiet[middle], atol=1e-3)
    assert CEILING_DB <= -1.0
