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


def _bars(humanise_s: float, seed: int = 2010) -> list[NoteOn]:
    e = Engine(EngineConfig(bpm=120, humanise_s=humanise_s, seed=seed), start=0.0)
    for caller in ("c-aa", "c-bb", "c-cc", "c-dd"):
        e.handle(Join(caller), 0.0)
    notes = []
    for n, digit in enumerate("1357924680"):
        at = 0.3 + n * 0.37
        notes += e.handle(Digit(("c-aa", "c-bb", "c-cc", "c-dd")[n % 4], digit), at)
        notes += e.advance(at, 0.1)
    notes += e.advance(8.0, 0.1)
    return [n for n in notes if isinstance(n, NoteOn)]


def test_timing_is_humanised_a_few_ms_late_by_role_with_the_kick_on_the_grid() -> None:
    straight, human = _bars(0.0), _bars(0.004)
    assert [(n.step, n.track, n.note) for n in straight] == [
        (n.step, n.track, n.note) for n in human
    ]  # the same notes, only their times move
    late = [h.time - s.time for s, h in zip(straight, human, strict=True)]
    assert all(0 <= d <= 0.004 + 1e-9 for d in late)
    assert len({round(d, 4) for d in late}) >= 10  # varied, not one offset for all
    kicks = [d for n, d in zip(human, late, strict=True) if n.channel == 9 and n.note == 36]
    assert kicks and all(d == 0 for d in kicks)
    bass = [d for n, d in zip(human, late, strict=True) if n.track == "bass"]
    assert bass and max(bass) <= 0.002 + 1e-9  # the bass locks with the kick: half as much
    assert _bars(0.004) == human  # the same seed: the same times
    assert [n.time for n in _bars(0.004, seed=7)] != [n.time for n in human]


def test_a_press_heard_at_once_is_never_delayed_by_humanising() -> None:
    e = Engine(EngineConfig(bpm=120, humanise_s=0.004), start=0.0)
    e.handle(Join("c-aa"), 0.0)  # on the lead
    at = e.grid.time_of(9) + 0.005  # within the grace after step 9
    [note] = [n for n in e.handle(Digit("c-aa", "3"), at) if isinstance(n, NoteOn)]
    assert note.time == at
