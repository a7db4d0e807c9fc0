"""The groove bed plays from the first second, yields to callers and follows the crowd."""

from __future__ import annotations

import pytest

from billboard.engine import BedVoice, Command, Digit, Engine, EngineConfig, Join, Leave, NoteOn


def bar_notes(e: Engine, bar: int) -> list[NoteOn]:
    """The NoteOns of `bar` (16 steps), rendered now."""
    start, end = e.grid.time_of(bar * 16), e.grid.time_of((bar + 1) * 16)
    return [n for n in e.advance(end - 1e-6) if isinstance(n, NoteOn) and n.time >= start]


def test_from_the_first_second_the_bed_plays_a_beat_a_bass_line_and_the_chord() -> None:
    e = Engine(EngineConfig(bpm=120), start=0.0)
    notes = bar_notes(e, 1)  # the first full bar (step 0 is the start itself)
    kicks = [n.step % 16 for n in notes if n.track == "drums" and n.note == 36]
    assert 0 in kicks  # on the bar's first beat
    assert any(n.track == "bass" and n.note <= 48 for n in notes)
    assert any(n.track == "pad" for n in notes)
    assert e.scene(2.0).attract  # and the screen still invites: nobody plays yet


def test_the_first_caller_gets_a_melodic_part_over_the_running_beat() -> None:
    e = Engine(EngineConfig(bpm=120), start=0.0)
    e.handle(Join("c-aa"), 0.0)
    e.handle(Join("c-bb"), 0.0)
    assert [(u.caller, u.track) for u in e.take_updates()] == [("c-aa", "lead"), ("c-bb", "bass")]
    notes = bar_notes(e, 1)
    assert any(n.track == "drums" and n.note == 36 and n.step == 16 for n in notes)
    assert any(n.track == "lead" for n in notes) is False  # c-aa has not pressed yet
    # c-bb holds the bass but has not played: the bed's bass line goes on meanwhile.
    assert any(n.track == "bass" and n.channel == 10 for n in notes)


def test_a_caller_on_drums_hears_the_whole_beat_until_their_first_key() -> None:
    e = Engine(EngineConfig(bpm=120, seat_order=("drums",)), start=0.0)
    e.handle(Join("c-aa"), 0.0)
    notes = bar_notes(e, 1)
    drums = {n.note for n in notes if n.track == "drums"}
    assert drums == {36, 42}  # the intro's kick and hats: a beat to vary (test_grooves.py)


def test_every_section_ends_on_a_fill_into_the_next() -> None:
    e = Engine(EngineConfig(bpm=240), start=0.0)
    bar_s = 16 * e.grid.step_duration
    snares = {}
    for bar in range(36):  # one player, a key a bar: build 4–11, drop 12–19, break 20–27
        e.handle(Digit("c-aa", "1"), bar * bar_s + 0.01)
        notes = bar_notes(e, bar)
        snares[bar] = [n.step % 16 for n in notes if n.track == "drums" and n.note == 38]
    for bar in (11, 19, 27):  # build → drop (its roll), drop → break, break → build
        assert snares[bar][-4:] == [12, 13, 14, 15], bar
    assert snares[18] == [4, 12] and snares[26] == []


def play_bars(e: Engine, bars: range, callers: list[str], per_bar: int) -> dict[str, int]:
    """`callers` press `per_bar` keys a bar each through `bars`: the bar each section
    was first heard in."""
    bar_s = 16 * e.grid.step_duration
    seen: dict[str, int] = {}
    for bar in bars:
        for k in range(per_bar):
            at = (bar + k / per_bar) * bar_s + 0.01
            e.advance(at)
            for caller in callers:
                e.handle(Digit(caller, "1"), at)
        seen.setdefault(e.bed.section, bar)
    return seen


def test_sections_follow_the_crowd_intro_alone_then_one_player_builds_drops_and_breaks() -> None:
    e = Engine(EngineConfig(bpm=240), start=0.0)
    bar_s = 16 * e.grid.step_duration
    e.advance(5 * bar_s + 0.01)
    assert e.bed.section == "intro"
    e.handle(Join("c-aa"), 5 * bar_s + 0.01)  # the crowd's first section starts on bar 8
    seen = play_bars(e, range(6, 50), ["c-aa"], 1)  # a key a bar: a quiet crowd
    assert seen == {"intro": 6, "build": 8, "drop": 16, "break": 24}
    assert e.bed.section == "break"  # bars 48–55: build 32, drop 40, break 48
    e.handle(Leave("c-aa"), 50 * bar_s)
    e.advance(55 * bar_s + 0.01)
    assert e.bed.section == "break"  # a section plays to its end
    e.advance(56 * bar_s + 0.01)
    assert e.bed.section == "intro"  # nobody holds a track: back to the intro


def test_a_busy_crowd_keeps_the_drop_going_for_three_phrases_before_a_break() -> None:
    e = Engine(EngineConfig(bpm=240), start=0.0)
    crowd = ["c-aa", "c-bb", "c-cc", "c-dd"]
    for caller in crowd:
        e.handle(Join(caller), 0.0)
    sections = {bar: section for bar, section in _section_per_bar(e, range(0, 60), crowd, 2)}
    assert [sections[b] for b in (4, 12, 20, 28, 36, 44)] == [
        "build",
        "drop",
        "drop",
        "drop",
        "break",
        "build",
    ]  # 8 keys a bar: busy


def test_a_crowd_that_thins_out_breaks_down_at_the_next_phrase() -> None:
    e = Engine(EngineConfig(bpm=240), start=0.0)
    crowd = ["c-aa", "c-bb", "c-cc", "c-dd"]
    for caller in crowd:
        e.handle(Join(caller), 0.0)
    busy = dict(_section_per_bar(e, range(0, 20), crowd, 2))
    assert busy[12] == "drop"
    thin = dict(_section_per_bar(e, range(20, 30), crowd[:1], 1))  # one key a bar now
    assert busy[19] == "drop" and thin[20] == "drop"  # bar 19 was busy: a second drop
    assert thin[28] == "break"  # the drop's phrase heard a quarter of the keys before it


def _section_per_bar(
    e: Engine, bars: range, callers: list[str], per_bar: int
) -> list[tuple[int, str]]:
    out = []
    for bar in bars:
        play_bars(e, range(bar, bar + 1), callers, per_bar)
        out.append((bar, e.bed.section))
    return out


def test_a_build_ends_on_a_snare_roll() -> None:
    e = Engine(EngineConfig(bpm=240), start=0.0)
    e.handle(Join("c-aa"), 0.0)
    bar_s = 16 * e.grid.step_duration
    e.advance(11 * bar_s - 1e-6)  # the build runs from bar 4 to bar 11
    last_bar = bar_notes(e, 11)
    assert e.bed.section == "build"
    snares = [n.step % 16 for n in last_bar if n.track == "drums" and n.note == 38]
    assert snares[-4:] == [12, 13, 14, 15]


def test_the_bed_can_be_turned_off_for_callers_alone() -> None:
    e = Engine(EngineConfig(bpm=120, style="none"), start=0.0)
    assert e.advance(8.0) == []
    with pytest.raises(ValueError, match="unknown style"):
        Engine(EngineConfig(style="polka"))


def test_the_beds_bass_chords_and_pad_go_out_on_channels_of_their_own_the_kit_on_drums() -> None:
    e = Engine(EngineConfig(bpm=240), start=0.0)
    e.handle(Join("c-aa"), 0.0)  # on the lead: the crowd's build brings the chords in
    notes = bar_notes(e, 5)
    assert e.bed.section == "build"
    # Under their tracks' names, whose samples the speakers play them with.
    assert {(n.track, n.channel) for n in notes} == {
        ("drums", 9),
        ("bass", 10),
        ("chords", 11),
        ("pad", 12),
    }


def test_a_caller_on_the_bass_track_plays_on_its_channel_and_the_bed_takes_over_after() -> None:
    """At 120 BPM a bar is 2 s and a loop two bars: c-bb plays bar 1, so their loop
    comes round in bar 3, and the bed's bass fills bar 2, which they left silent."""
    e = Engine(EngineConfig(bpm=120), start=0.0)
    e.handle(Join("c-aa"), 0.0)
    e.handle(Join("c-bb"), 0.0)  # on the bass
    notes = []
    for n in range(8):
        at = 2.0 + 0.25 * n
        notes += e.advance(at) + e.handle(Digit("c-bb", "135"[n % 3]), at)
    notes += e.advance(8.0)
    bass = [n for n in notes if isinstance(n, NoteOn) and n.track == "bass"]

    def channels(start: float, end: float) -> set[int]:
        return {n.channel for n in bass if start <= n.time < end}

    assert 0 in channels(2.0, 4.0)  # their presses, on the bass track's channel 1
    assert channels(4.0, 6.0) == {10}  # the bed's bass on its own channel 11
    assert channels(6.0, 8.0) == {0}  # their loop: the bed yields
    e.handle(Leave("c-bb"), 8.0)  # their loop fades over 4 bars (8 s), then the bed's is back
    later = [n for n in e.advance(24.0) if isinstance(n, NoteOn) and n.track == "bass"]
    assert {n.channel for n in later if 10.0 <= n.time < 12.0} == {0}  # fading, bar 5
    assert {n.channel for n in later if n.time > 16.0} == {10}


def test_the_bed_fills_a_bar_that_a_muted_caller_leaves_silent() -> None:
    e = Engine(EngineConfig(bpm=120), start=0.0)
    e.handle(Join("c-aa"), 0.0)
    e.handle(Join("c-bb"), 0.0)  # on the bass
    for n in range(8):
        e.advance(2.0 + 0.25 * n)
        e.handle(Digit("c-bb", "1"), 2.0 + 0.25 * n)
    e.advance(5.9)
    e.handle(Command("mute", {"caller": "c-bb", "on": True}), 5.9)
    bar_3 = [n for n in e.advance(8.0) if isinstance(n, NoteOn) and n.track == "bass"]
    assert bar_3 and {n.channel for n in bar_3} == {10}


def test_the_beds_voices_set_its_channels_and_a_part_without_one_plays_on_its_tracks() -> None:
    e = Engine(EngineConfig(bpm=120, bed_voices=(BedVoice("bass", 13, 33),)), start=0.0)
    notes = bar_notes(e, 1)
    assert {n.channel for n in notes if n.track == "bass"} == {13}
    assert {n.channel for n in notes if n.track == "pad"} == {4}  # the pad track's own


@pytest.mark.parametrize(("style", "swing"), [("pop", 0.1), ("house", 0.0), ("hiphop", 0.22)])
def test_each_style_brings_the_swing_that_suits_it(style: str, swing: float) -> None:
    assert Engine(EngineConfig(style=style), start=0.0).grid.swing == swing
    assert Engine(EngineConfig(style=style, swing=0.3), start=0.0).grid.swing == 0.3  # chosen


def test_a_style_chosen_live_brings_its_swing_from_the_next_bar() -> None:
    e = Engine(EngineConfig(bpm=120, style="hiphop"), start=0.0)
    step = e.grid.step_duration
    e.advance(1.0)
    e.handle(Command("style", {"name": "house"}), 1.0)  # during bar 0
    e.advance(1.9)
    assert e.grid.swing == 0.22  # bar 0 keeps its swing to its end
    e.advance(2.5)  # bar 1 began at 2.0 s
    assert e.grid.swing == 0.0
    assert e.grid.time_of(21) - e.grid.time_of(20) == pytest.approx(step)  # straight 16ths
    fixed = Engine(EngineConfig(bpm=120, style="hiphop", swing=0.3), start=0.0)
    fixed.handle(Command("style", {"name": "house"}), 1.0)
    fixed.advance(2.5)
    assert fixed.grid.swing == 0.3  # a swing the installation chose stays


def test_the_scene_says_when_its_section_began_and_how_far_into_its_step_it_is() -> None:
    e = Engine(EngineConfig(bpm=240), start=0.0)
    bar_s = 16 * e.grid.step_duration
    e.handle(Join("c-aa"), 0.5 * bar_s)
    play_bars(e, range(1, 18), ["c-aa"], 1)  # build from bar 4, drop from bar 12
    scene = e.scene(17 * bar_s + 0.25 * e.grid.step_duration)
    assert scene.section == "drop" and scene.section_step == 12 * 16
    assert scene.step == 17 * 16 and scene.phase == pytest.approx(0.25)
    play_bars(e, range(18, 21), ["c-aa"], 1)  # the break from bar 20
    assert e.scene(20 * bar_s + 0.01).section_step == 20 * 16
