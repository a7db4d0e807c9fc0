"""A caller on drums shapes the groove: each key chooses a figure that loops in time,
`#` fills into the next bar, `*` accents; the kick stays on one (grooves.py). And the
operator changes the bed's style live, from the next bar."""

from __future__ import annotations

import pytest

from billboard.engine import Command, Digit, Engine, EngineConfig, Join, Leave, Note, NoteOn
from billboard.engine.bed import NO_BED, STYLES
from billboard.engine.grooves import BASE, FIGURES, bar_hits
from billboard.engine.harmony import DRUM_MAPS
from billboard.engine.roles import PER_BAR, PER_STEP
from relay.contract.events import STYLE_NAMES

BAR = 16
# The kit's drums by name, and those of its fills.
KICK, SNARE, HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 42, 46, 49, 51
FILL_DRUMS = {38, 45, 50}


def drummer(track: str = "drums", **changes: object) -> Engine:
    """An engine at 120 BPM, straight, with c-d seated on `track` at 0.0 (the bed: pop)."""
    settings: dict[str, object] = {"bpm": 120, "swing": 0.0, "seat_order": (track,)}
    settings.update(changes)
    e = Engine(EngineConfig(**settings), start=0.0)  # type: ignore[arg-type]
    e.handle(Join("c-d"), 0.0)
    return e


def at_step(e: Engine, step: int) -> float:
    """A moment after `step` began, past the grace: a press then plays on the next step
    (at 240 BPM or slower, straight)."""
    return e.grid.time_of(step) + 0.04


def by_step(notes: list[Note], track: str = "drums") -> dict[int, set[int]]:
    """Step → the notes `track` starts there."""
    steps: dict[int, set[int]] = {}
    for n in notes:
        if isinstance(n, NoteOn) and n.track == track:
            steps.setdefault(n.step, set()).add(n.note)
    return steps


def played(e: Engine, until_bar: int, track: str = "drums") -> dict[int, set[int]]:
    """Render up to the end of `until_bar`: step → the notes `track` starts there."""
    return by_step(e.advance(e.grid.time_of((until_bar + 1) * BAR) - 1e-6), track)


def where(steps: dict[int, set[int]], note: int, bar: int) -> list[int]:
    """The places in `bar` (0–15) where `note` sounds."""
    return [s % BAR for s in sorted(steps) if s // BAR == bar and note in steps[s]]


def test_a_caller_on_drums_pressing_5_hears_its_open_hat_at_once_then_its_figure() -> None:
    e = drummer()
    [now] = [n for n in e.handle(Digit("c-d", "5"), at_step(e, 1)) if isinstance(n, NoteOn)]
    assert (now.step, now.note) == (2, OPEN_HAT)  # heard on the very next step
    steps = played(e, 3)
    assert HAT in steps[2]  # the bed's own beat until the next beat …
    assert where(steps, OPEN_HAT, 0) == [6, 10, 14]  # … then the off-beat open hats
    for bar in (1, 2, 3):  # and bar after bar, in time, under the bed's kick on one
        assert where(steps, OPEN_HAT, bar) == [2, 6, 10, 14]
        assert where(steps, KICK, bar)[0] == 0


def test_a_new_key_changes_the_figure_from_the_next_beat() -> None:
    e = drummer()
    e.handle(Digit("c-d", "5"), at_step(e, 1))
    played(e, 1)
    e.handle(Digit("c-d", "9"), at_step(e, 2 * BAR + 5))  # step 38: the ride from step 40
    steps = played(e, 3)
    assert where(steps, OPEN_HAT, 2) == [2, 6]
    assert where(steps, RIDE, 2) == [8, 12, 14]
    assert where(steps, RIDE, 3) == [0, 4, 6, 8, 12, 14] and where(steps, OPEN_HAT, 3) == []
    assert where(steps, KICK, 3)[0] == 0


def test_hash_plays_a_fill_over_the_last_beat_and_crashes_into_the_next_bar() -> None:
    e = drummer()
    e.handle(Digit("c-d", "3"), at_step(e, 1))
    [now] = [n for n in e.handle(Digit("c-d", "#"), at_step(e, 5)) if isinstance(n, NoteOn)]
    assert (now.step, now.note) == (6, SNARE)  # a snare at once
    steps = played(e, 2)
    fill = [s for s in range(12, 16) if steps.get(s, set()) & FILL_DRUMS]
    assert len(fill) >= 3 and not any(HAT in steps.get(s, set()) for s in fill)
    assert {KICK, CRASH} <= steps[BAR]  # the next downbeat: kick and crash
    assert not any(steps.get(s, set()) & {45, 50, CRASH} for s in range(BAR + 1, 3 * BAR))


def test_hash_in_the_last_step_of_a_bar_fills_the_next_bars_end() -> None:
    e = drummer()
    e.handle(Digit("c-d", "#"), at_step(e, 14))  # plays on step 15: too late for this bar
    steps = played(e, 2)
    assert not any(steps.get(s, set()) & {45, 50} for s in range(12, 16))
    assert sum(bool(steps.get(s, set()) & FILL_DRUMS) for s in range(BAR + 12, 2 * BAR)) >= 3
    assert CRASH in steps[2 * BAR]


def test_hash_before_any_key_keeps_the_beds_beat_and_adds_the_fill() -> None:
    e = drummer()
    e.handle(Digit("c-d", "#"), at_step(e, 1))
    steps = played(e, 1)
    assert where(steps, HAT, 1) == [2, 6, 10, 14]  # pop's intro hats, as before the press
    assert where(steps, KICK, 1) == [0, 8] and CRASH in steps[BAR]


def test_a_figure_fills_into_each_section_change() -> None:
    e = drummer(bpm=240)
    steps: dict[int, set[int]] = {}
    for bar in range(0, 13, 4):  # a key every four bars keeps the drummer playing
        e.handle(Digit("c-d", "8"), at_step(e, bar * BAR + 1))
        steps |= played(e, bar + 3)
    # The build runs bars 4–11, the drop from bar 12: bar 11 rolls into it.
    assert e.bed.section == "drop"
    assert sum(bool(steps.get(11 * BAR + s, set()) & FILL_DRUMS) for s in range(12, 16)) >= 3
    assert {KICK, CRASH} <= steps[12 * BAR]
    assert not any(steps.get(10 * BAR + s, set()) & {45, 50} for s in range(BAR))


def test_star_is_an_accent_heard_at_once_and_the_figure_goes_on() -> None:
    e = drummer()
    e.handle(Digit("c-d", "9"), at_step(e, 1))
    played(e, 0)
    [now] = [n for n in e.handle(Digit("c-d", "*"), at_step(e, BAR + 3)) if isinstance(n, NoteOn)]
    assert now.note == CRASH and now.velocity > 100
    assert where(played(e, 2), RIDE, 2) == [0, 4, 6, 8, 12, 14]


def test_every_figure_keeps_the_kick_on_one_and_the_drums_density_in_every_style() -> None:
    for kit, figures in FIGURES.items():
        for style in (*STYLES, None):
            for section in ("intro", "build", "drop", "break"):
                for figure in (*range(len(figures)), BASE):
                    for fill_from, crash in ((None, False), (12, False), (14, True)):
                        bar = bar_hits(kit, style, section, figure, fill_from, 2, crash)
                        assert sum(len(hits) for hits in bar) <= PER_BAR["drums"]
                        assert all(len(hits) <= PER_STEP["drums"] for hits in bar)
                        notes = {note for hits in bar for note, _ in hits}
                        if kit == "kit":
                            assert KICK in {note for note, _ in bar[0]}
                        else:
                            assert notes <= set(DRUM_MAPS["perc"])


def test_each_key_leads_with_its_own_drum() -> None:
    for kit, figures in FIGURES.items():
        for index in range(len(figures)):
            bar = bar_hits(kit, "pop", "drop", index)
            assert DRUM_MAPS[kit][index] in {note for hits in bar for note, _ in hits}


def test_the_percussion_plays_figures_of_its_own_kit_fitting_the_section() -> None:
    e = drummer("percussion", bpm=240)
    steps: dict[int, set[int]] = {}
    for bar in range(0, 5, 2):
        e.handle(Digit("c-d", "8"), at_step(e, bar * BAR + 1))  # the claves
        steps |= played(e, bar + 1, "percussion")
    assert where(steps, 75, 3) == [0, 6, 10, 12]  # the intro keeps the clave's 8ths …
    assert where(steps, 75, 5) == [0, 3, 6, 10, 12]  # … the build the son clave, 3–2
    assert where(steps, 54, 5) == [4, 12]  # beside pop's tambourine on the backbeat
    assert {n for notes in steps.values() for n in notes} <= set(DRUM_MAPS["perc"])


def test_a_muted_or_departed_drummer_gives_the_kit_back_to_the_bed_at_once() -> None:
    e = drummer()
    e.handle(Digit("c-d", "5"), at_step(e, 1))
    played(e, 0)
    e.handle(Command("mute", {"caller": "c-d", "on": True}), at_step(e, BAR))
    steps = played(e, 1)
    assert where(steps, HAT, 1) == [2, 6, 10, 14] and where(steps, OPEN_HAT, 1) == []
    e.handle(Command("mute", {"caller": "c-d", "on": False}), at_step(e, 2 * BAR))
    assert where(played(e, 2), OPEN_HAT, 2) == [2, 6, 10, 14]
    gone = at_step(e, 3 * BAR + 4)
    steps = by_step(e.advance(gone))  # live, the scheduler renders up to a leave first
    e.handle(Leave("c-d"), gone)
    steps |= played(e, 3)
    assert where(steps, OPEN_HAT, 3) == [2]  # the figure up to the leave, the bed's hats after
    assert where(steps, HAT, 3) == [0, 4, 6, 10, 14]


def test_a_departed_percussionists_figure_fades_out() -> None:
    e = drummer("percussion", fade_bars=2)
    e.handle(Digit("c-d", "5"), at_step(e, 1))  # the cowbell
    played(e, 0)
    e.handle(Leave("c-d"), at_step(e, BAR - 1))
    assert e.scene(at_step(e, BAR)).tracks[-1].fading
    notes = [n for n in e.advance(e.grid.time_of(6 * BAR)) if isinstance(n, NoteOn)]
    ons = [n for n in notes if n.track == "percussion"]
    downbeats = [n.velocity for n in ons if n.note == 56 and n.step % BAR == 0]
    assert len(downbeats) == 2 and downbeats[1] < 0.7 * downbeats[0]  # bars 1 and 2
    assert max(n.step for n in ons) < 3 * BAR  # then silence
    assert not e.scene(e.grid.time_of(6 * BAR)).tracks[-1].fading


def test_the_facade_shows_the_figure_a_drummer_plays() -> None:
    e = drummer()
    e.handle(Digit("c-d", "5"), at_step(e, 1))
    played(e, 1)
    [view] = [t for t in e.scene(e.grid.time_of(BAR + 1)).tracks if t.name == "drums"]
    assert {2, 6, 10, 14, 18, 22, 26, 30} <= set(view.pattern)


def test_the_same_presses_give_the_same_notes() -> None:
    def night() -> list[object]:
        e = Engine(EngineConfig(seat_order=("drums", "percussion")), start=0.0)
        e.handle(Join("c-d"), 0.0)
        e.handle(Join("c-p"), 0.0)
        out: list[object] = []
        for i in range(120):
            at = 0.5 + i * 0.29
            out += e.advance(at, 0.05)
            out += e.handle(Digit(("c-d", "c-p")[i % 2], "1234567890*#"[(i * 5) % 12]), at)
        return out + e.advance(60.0)

    first = night()
    assert first == night() and len(first) > 1000


# -- the operator's style ----------------------------------------------------------------


def test_the_engine_plays_exactly_the_styles_the_contract_names() -> None:
    assert (*STYLES, NO_BED) == STYLE_NAMES  # the console offers these, the relay lets them by


def test_the_operator_changes_the_style_from_the_next_bar_and_the_state_says_so_at_once() -> None:
    e = Engine(EngineConfig(bpm=120, swing=0.0), start=0.0)
    steps = by_step(e.advance(at_step(e, BAR + 2)))  # live, rendered up to the command
    e.handle(Command("style", {"name": "house"}), at_step(e, BAR + 2))
    assert e.scene(at_step(e, BAR + 2)).to_state()["style"] == "house"
    steps |= played(e, 2)
    assert where(steps, KICK, 1) == [0, 8]  # pop's intro to the end of the bar
    assert where(steps, KICK, 2) == [0, 4, 8, 12]  # then house: four on the floor
    e.handle(Command("style", {"name": "polka"}), at_step(e, 3 * BAR))  # ignored
    assert e.scene(at_step(e, 3 * BAR)).style == "house"
    steps = by_step(e.advance(at_step(e, 3 * BAR + 2)))
    e.handle(Command("style", {"name": "none"}), at_step(e, 3 * BAR + 2))
    assert where(steps | played(e, 3), KICK, 3) == [0, 4, 8, 12]
    assert e.advance(e.grid.time_of(6 * BAR)) == []  # from bar 4 on, the callers alone


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_drummers_figure_follows_the_style_the_operator_chooses(style: str) -> None:
    e = drummer()
    e.handle(Digit("c-d", "2"), at_step(e, 1))  # the snare with ghost notes
    e.handle(Command("style", {"name": style}), at_step(e, 2))
    steps = played(e, 1)
    kick = STYLES[style].drums["intro"]["kick"]
    assert where(steps, KICK, 1) == [pos for pos, letter in enumerate(kick) if letter != "."]
    assert where(steps, SNARE, 1) == [4, 7, 9, 12, 15]
