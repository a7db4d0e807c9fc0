"""A pitched track plays one line, not a pile: a later note lifts what the track still
holds, the notes of one step sound together, and a pitch is never started twice."""

from __future__ import annotations

from billboard.engine import Digit, Engine, EngineConfig, Join, NoteOff, NoteOn
from billboard.engine.events import Note
from billboard.engine.held import Held

STEP = 60 / 120 / 4  # 125 ms at 120 BPM


def held() -> Held:
    return Held(lambda step: step * STEP)


def offs(notes: list[Note]) -> list[tuple[float, int, int]]:
    return [(round(n.time, 4), n.step, n.note) for n in notes if isinstance(n, NoteOff)]


def test_a_note_off_leaves_when_its_step_is_rendered_stamped_with_its_time() -> None:
    h = held()
    started = h.start("pad", 4, (60,), 70, step=0, when=0.0, end=8, rendered=0)
    assert started == [NoteOn(0.0, 0, "pad", 4, 60, 70)]
    assert h.due(7) == []
    assert h.due(8) == [NoteOff(8 * STEP, 8, "pad", 4, 60)]
    assert h.due(9) == []  # once


def test_a_later_note_lifts_what_the_track_still_holds() -> None:
    h = held()
    h.start("pad", 4, (60,), 70, step=0, when=0.0, end=8, rendered=0)
    h.start("lead", 2, (72,), 90, step=0, when=0.0, end=8, rendered=0)
    notes = h.start("pad", 4, (64,), 70, step=3, when=3 * STEP, end=11, rendered=3)
    assert notes == [NoteOff(3 * STEP, 3, "pad", 4, 60), NoteOn(3 * STEP, 3, "pad", 4, 64, 70)]
    assert offs(h.due(8)) == [(1.0, 8, 72)]  # the lead, another track, went on to its end
    assert offs(h.due(11)) == [(11 * STEP, 11, 64)]


def test_a_chords_notes_sound_together_and_the_next_chord_lifts_them_all() -> None:
    h = held()
    first = h.start("chords", 1, (60, 64, 67), 80, step=0, when=0.0, end=4, rendered=0)
    assert [n.note for n in first if isinstance(n, NoteOn)] == [60, 64, 67]
    assert h.start("chords", 1, (62,), 80, step=0, when=0.0, end=4, rendered=0)[0].note == 62
    second = h.start("chords", 1, (65, 69, 72), 80, step=2, when=2 * STEP, end=6, rendered=2)
    assert sorted(n.note for n in second if isinstance(n, NoteOff)) == [60, 62, 64, 67]
    assert [n.note for n in second if isinstance(n, NoteOn)] == [65, 69, 72]


def test_a_pitch_is_never_started_twice_before_it_ends() -> None:
    h = held()
    h.start("bass", 0, (36,), 100, step=4, when=0.5, end=6, rendered=4)
    again = h.start("bass", 0, (36,), 100, step=4, when=0.5, end=8, rendered=4)
    assert again == []  # the same step holds it already: held the longer
    assert h.due(6) == [] and offs(h.due(8)) == [(1.0, 8, 36)]
    h.start("bass", 0, (36,), 100, step=8, when=1.0, end=10, rendered=8)
    later = h.start("bass", 0, (36,), 100, step=9, when=1.125, end=11, rendered=9)
    assert [type(n).__name__ for n in later] == ["NoteOff", "NoteOn"]  # ended, then again


def test_a_note_whose_end_is_already_rendered_ends_at_once() -> None:
    h = held()
    notes = h.start("pluck", 3, (67,), 90, step=5, when=0.63, end=6, rendered=6)
    assert offs(notes) == [(6 * STEP, 6, 67)]
    assert h.due(100) == []


def test_a_callers_presses_on_the_pad_never_pile_up() -> None:
    """A press every 3 steps on a track whose notes last 8: one note at a time."""
    config = EngineConfig(bpm=120, swing=0.0, style="none", seat_order=("pad",))
    e = Engine(config, start=0.0)
    e.handle(Join("c-1"), 0.0)
    notes: list[Note] = []
    for n in range(8):
        notes += e.handle(Digit("c-1", str(1 + n % 9)), (1 + 3 * n) * STEP)
        notes += e.advance((2 + 3 * n) * STEP)
    sounding = 0
    most = 0
    for note in sorted(notes, key=lambda x: (x.time, isinstance(x, NoteOn))):
        sounding += 1 if isinstance(note, NoteOn) else -1
        most = max(most, sounding)
    assert sum(isinstance(n, NoteOn) for n in notes) >= 8 and most == 1
