"""The music measures read what a listener hears from the notes alone."""

from __future__ import annotations

from bench.music_metrics import note_measures, pair
from billboard.engine.events import NoteOff, NoteOn

C_MAJOR = [0, 2, 4, 5, 7, 9, 11]


def note(step: int, track: str, channel: int, pitch: int, length: int = 1, velocity: int = 90):
    return [
        NoteOn(step * 0.125, step, track, channel, pitch, velocity),
        NoteOff((step + length) * 0.125, step + length, track, channel, pitch),
    ]


def measures(notes: list, presses: list[int], last: int = 31) -> dict:
    ordered = sorted(notes, key=lambda n: (n.time, isinstance(n, NoteOn)))
    return note_measures(pair(ordered), presses, 0, last, C_MAJOR, (last + 1) * 0.125)


def test_a_kick_on_the_first_16th_of_a_played_bar_counts_and_one_elsewhere_does_not() -> None:
    notes = note(0, "drums", 9, 36) + note(20, "drums", 9, 36)  # bar 0 on one, bar 1 off it
    m = measures(notes, presses=[0, 18])
    assert m["pressed_bars"] == 2 and m["kick_on_one_pct"] == 50.0


def test_a_semitone_between_notes_sounding_together_is_a_rub_and_a_fifth_is_not() -> None:
    notes = note(0, "lead", 2, 64, length=4) + note(2, "pluck", 3, 65, length=1)  # E and F
    notes += note(8, "bass", 0, 48, length=4) + note(8, "pad", 4, 55, length=4)  # C and G
    m = measures(notes, presses=[0])
    assert m["rub_steps_pct"] == 100 * 1 / 32  # only step 2
    assert m["tritone_steps_pct"] == 0
    assert m["sounding_max"] == 2


def test_a_major_seventh_is_the_same_rub_as_a_minor_second_across_octaves() -> None:
    m = measures(note(0, "bass", 0, 36, length=2) + note(0, "lead", 2, 83, length=2), [0])
    assert m["rub_steps_pct"] == 100 * 2 / 32


def test_bars_nobody_plays_count_as_grooving_only_with_a_kick_and_a_bass_note() -> None:
    notes = note(16, "drums", 9, 36) + note(16, "bass", 0, 36) + note(40, "drums", 9, 36)
    m = measures(notes, presses=[0], last=47)  # bars 1 and 2 have no press
    assert m["empty_bars"] == 2 and m["empty_bars_grooving_pct"] == 50.0


def test_only_whole_bars_are_judged_for_their_groove() -> None:
    """A window that starts mid-bar cannot hear that bar's downbeat, nor one that ends
    mid-bar its end: neither counts."""
    notes = note(16, "drums", 9, 36) + note(16, "bass", 0, 36)
    whole = note_measures(pair(notes), [], 10, 40, C_MAJOR, 4.0)  # bars 0 and 2 are cut
    assert whole["empty_bars"] == 1 and whole["empty_bars_grooving_pct"] == 100.0


def test_registers_velocities_and_key_are_read_per_pitched_track() -> None:
    notes = []
    for i, pitch in enumerate([40, 43, 47, 49]):  # C# (49) is out of C major
        notes += note(i, "bass", 0, pitch, velocity=80 + i)
    notes += note(4, "drums", 9, 38, velocity=127)
    m = measures(notes, presses=[0])
    assert m["registers"] == {"bass": [40, 49]}
    assert m["velocities"] == {"bass": 4} and m["bar_velocities"] == {"bass": 4}
    assert m["in_key_pct"] == 75.0


def test_a_note_never_ended_lasts_a_bar() -> None:
    [played] = pair([NoteOn(0.0, 3, "pad", 4, 60, 70)])
    assert (played.step, played.end_step) == (3, 19)


def test_loudness_follows_level_and_peaks_and_stereo_are_read_from_the_audio() -> None:
    import numpy as np

    from bench.music_metrics import audio_measures

    rate = 44100
    t = np.arange(rate * 6) / rate
    sine = np.sin(2 * np.pi * 997 * t).astype(np.float32)
    loud = audio_measures(np.stack([0.5 * sine, 0.5 * sine], axis=1), rate)
    quiet = audio_measures(np.stack([0.25 * sine, 0.25 * sine], axis=1), rate)
    assert abs((loud["lufs"] - quiet["lufs"]) - 6.02) < 0.1
    assert abs(loud["true_peak_dbtp"] - (-6.02)) < 0.1
    assert loud["clipped"] == 0 and loud["lr_correlation"] > 0.999
    assert loud["short_term_spread_db"] < 0.5  # a steady tone

    noise = np.random.default_rng(1).standard_normal((rate * 6, 2)).astype(np.float32) * 0.1
    assert abs(audio_measures(noise, rate)["lr_correlation"]) < 0.1
    clipped = audio_measures(np.stack([1.2 * sine, sine], axis=1), rate)
    assert clipped["clipped"] > 0 and clipped["true_peak_dbtp"] > 1.0


def test_timing_is_read_against_the_kick_of_the_same_step() -> None:
    kick = note(0, "drums", 9, 36) + note(4, "drums", 9, 36)
    late = [
        NoteOn(0.002, 0, "bass", 0, 36, 90),  # 2 ms behind the kick
        NoteOff(0.25, 2, "bass", 0, 36),
        NoteOn(4 * 0.125 + 0.004, 4, "lead", 2, 72, 90),  # 4 ms
        NoteOff(0.75, 6, "lead", 2, 72),
        NoteOn(4 * 0.125 + 0.02, 4, "pluck", 3, 67, 90),  # a press heard at once: 20 ms
        NoteOff(0.75, 6, "pluck", 3, 67),
        NoteOn(8 * 0.125 + 0.3, 8, "pad", 4, 60, 90),  # no kick on its step: not judged
        NoteOff(1.5, 12, "pad", 4, 60),
    ]
    m = measures(kick + late, presses=[0])
    assert round(m["behind_kick_ms_median"], 6) == 4.0
    assert round(m["behind_kick_within_5ms_pct"], 6) == round(100 * 2 / 3, 6)
