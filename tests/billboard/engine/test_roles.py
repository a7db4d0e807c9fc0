"""Each instrument keeps to its role: its register, its rhythm, its density, its notes."""

from __future__ import annotations

from billboard.engine import Digit, Engine, EngineConfig, Join, NoteOn
from billboard.engine.roles import consonant, end_step, fold, quantise, role
from billboard.engine.tracks import DEFAULT_TRACKS

C_MAJOR_TRIAD = (60, 64, 67)


def test_each_default_track_has_the_role_its_sound_suggests() -> None:
    assert {t.name: role(t) for t in DEFAULT_TRACKS} == {
        "drums": "drums",
        "bass": "bass",
        "chords": "chords",
        "lead": "melody",
        "pluck": "melody",
        "pad": "pad",
        "bells": "melody",
        "percussion": "drums",
    }


def test_a_note_above_its_ceiling_comes_down_by_octaves() -> None:
    assert fold(81, 48) == 45 and fold(48, 48) == 48 and fold(120, 84) == 84


def test_a_melody_lands_on_a_chord_tone_on_the_beat_and_avoids_a_semitone_between() -> None:
    assert consonant(62, C_MAJOR_TRIAD, step=4) == 60  # D on a beat: down to C
    assert consonant(62, C_MAJOR_TRIAD, step=6) == 62  # D between beats: a whole tone, kept
    assert consonant(65, C_MAJOR_TRIAD, step=6) == 64  # F rubs against E: to E
    assert consonant(71, C_MAJOR_TRIAD, step=5) == 72  # B rubs against C: to C
    assert consonant(67, C_MAJOR_TRIAD, step=0) == 67  # a chord tone stays


def test_a_bass_plays_on_8ths_and_a_pad_stops_at_the_chord_change() -> None:
    assert [quantise(s, "bass") for s in (2, 3)] == [2, 4]
    assert quantise(3, "melody") == 3
    assert end_step(12, 8, "pad", bars_per_chord=1) == 16
    assert end_step(12, 8, "pad", bars_per_chord=2) == 20
    assert end_step(12, 2, "melody", bars_per_chord=1) == 14


def test_a_caller_mashing_keys_keeps_a_phrase_not_a_pile() -> None:
    e = Engine(EngineConfig(bpm=120, style="none", seat_order=("lead",)), start=0.0)
    e.handle(Join("c-a"), 0.0)
    for n in range(64):  # four presses a step for a bar
        e.handle(Digit("c-a", "1234567890"[n % 10]), 0.001 + n * 0.031)
    # The loop (two bars) plays the bar again from 4 s.
    looped = [n for n in e.advance(5.99) if isinstance(n, NoteOn) and n.time >= 4.0]
    assert 0 < len(looped) <= 8  # at most eight a bar
    assert len({n.step for n in looped}) == len(looped)  # one note a step


def test_every_note_keeps_to_its_register_however_high_the_caller_goes() -> None:
    e = Engine(EngineConfig(bpm=120, style="none"), start=0.0)
    callers = [f"c-{i}" for i in range(8)]
    for c in callers:
        e.handle(Join(c), 0.0)
    notes = []
    for n in range(200):
        for c in callers:
            e.handle(Digit(c, "#"), n * 0.05)
            notes += e.handle(Digit(c, "0"), n * 0.05 + 0.01)  # the highest digit, up
    ceiling = {"bass": 48, "chords": 84, "pad": 84, "lead": 96, "pluck": 96, "bells": 96}
    for note in notes:
        if isinstance(note, NoteOn) and note.track in ceiling:
            assert note.note <= ceiling[note.track], note
