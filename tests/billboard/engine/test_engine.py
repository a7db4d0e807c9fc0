"""The music engine in simulated time: no I/O, no clock, exact notes."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from billboard.engine import (
    Assign,
    Command,
    Digit,
    Engine,
    EngineConfig,
    Join,
    Leave,
    Left,
    NoteOff,
    NoteOn,
)
from billboard.engine.clock import Grid
from billboard.engine.harmony import NOTE_NAMES, SCALES, Harmony, parse_key, parse_progression
from billboard.engine.tracks import DEFAULT_TRACKS
from relay.contract.callers import Notice
from relay.contract.events import KEY_NAMES, SCALE_NAMES, clean_display, clean_nick
from relay.contract.scene import BANNED_MAX

STEP = 60 / 120 / 4  # 125 ms at 120 BPM


def engine(**changes: object) -> Engine:
    # Callers alone, seated in the tracks' order: what each test below is about.
    settings: dict[str, object] = {"bpm": 120, "swing": 0.0, "style": "none", "seat_order": ()}
    settings.update(changes)
    return Engine(EngineConfig(**settings), start=0.0)  # type: ignore[arg-type]


def shape(notes: list[NoteOn | NoteOff]) -> list[tuple[float, str, int]]:
    """When, on which track and which note each NoteOn sounds (not how loud)."""
    return [(round(n.time, 4), n.track, n.note) for n in notes if isinstance(n, NoteOn)]


def ons(notes: list[NoteOn | NoteOff]) -> list[tuple[float, str, int, int]]:
    return [(round(n.time, 4), n.track, n.note, n.velocity) for n in notes if isinstance(n, NoteOn)]


def test_the_engine_imports_no_pygame_mido_or_aiohttp() -> None:
    code = (
        "import sys, billboard.engine, billboard.engine.engine;"
        "bad = [m for m in ('pygame', 'mido', 'rtmidi', 'aiohttp') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- callers and tracks ---------------------------------------------------------------


def test_a_join_takes_the_first_free_track_and_is_told_its_colour() -> None:
    e = engine()
    e.handle(Join("c-aa"), 0.0)
    e.handle(Join("c-bb"), 0.0)
    assert e.take_updates() == [
        Assign("c-aa", "drums", "#e69f00", 0),
        Assign("c-bb", "bass", "#0072b2", 0),
    ]


def test_the_ninth_caller_waits_in_line_and_moves_up_when_a_track_frees() -> None:
    e = engine()
    for n in range(10):
        e.handle(Join(f"c-{n}"), 0.0)
    updates = e.take_updates()
    assert updates[8:] == [Assign("c-8", None, None, 1), Assign("c-9", None, None, 2)]
    e.handle(Leave("c-3"), 1.0)  # the lead's caller hangs up
    assert e.take_updates() == [
        Assign("c-8", "lead", "#d55e00", 0),
        Assign("c-9", None, None, 1),
    ]


def test_a_caller_who_leaves_the_line_moves_those_behind_up() -> None:
    e = engine()
    for n in range(11):
        e.handle(Join(f"c-{n}"), 0.0)
    e.take_updates()
    e.handle(Leave("c-8"), 1.0)
    assert e.take_updates() == [Assign("c-9", None, None, 1), Assign("c-10", None, None, 2)]


def test_an_idle_caller_frees_the_track_for_the_next_in_line() -> None:
    e = engine(idle_s=30)
    for n in range(9):
        e.handle(Join(f"c-{n}"), 0.0)
    for n in range(1, 8):
        e.handle(Digit(f"c-{n}", "1"), 20.0)  # everyone but c-0 keeps playing
    e.take_updates()
    e.advance(29.9)
    assert e.take_updates() == []
    e.advance(30.1)
    assert e.take_updates() == [Left("c-0", "idle"), Assign("c-8", "drums", "#e69f00", 0)]


def test_a_turn_ends_after_three_minutes_only_while_others_wait() -> None:
    e = engine(turn_s=180, idle_s=1e9)
    e.handle(Join("c-alone"), 0.0)
    e.advance(500.0)
    assert e.take_updates() == [Assign("c-alone", "drums", "#e69f00", 0)]  # nobody waits
    full = engine(turn_s=180, idle_s=1e9)
    for n in range(9):
        full.handle(Join(f"c-{n}"), float(n))
    full.take_updates()
    full.advance(180.5)
    assert full.take_updates() == [Left("c-0", "turn"), Assign("c-8", "drums", "#e69f00", 0)]


def test_a_freed_caller_who_presses_again_rejoins_at_the_back_of_the_line() -> None:
    e = engine(idle_s=30)
    for n in range(10):
        e.handle(Join(f"c-{n}"), 0.0)
    for n in range(1, 8):
        e.handle(Digit(f"c-{n}", "1"), 25.0)
    e.advance(31.0)  # c-0 freed, c-8 seated, c-9 first in line
    e.take_updates()
    assert e.handle(Digit("c-0", "5"), 32.0) == []
    assert e.take_updates() == [Assign("c-0", None, None, 2)]


def test_a_kicked_caller_is_refused_until_the_ban_ends() -> None:
    e = engine(kick_ban_s=60)
    e.handle(Join("c-rude"), 0.0)
    e.take_updates()
    e.handle(Command("kick", {"caller": "c-rude"}), 1.0)
    assert e.take_updates() == [Left("c-rude", "kicked", 60.0)]  # and for how long
    assert e.handle(Digit("c-rude", "1"), 2.0) == []  # a press is ignored, silently
    e.handle(Join("c-rude"), 3.0)
    assert e.take_updates() == [Left("c-rude", "kicked", 58.0)]  # a join is told why
    e.handle(Join("c-rude"), 62.0)
    assert e.take_updates() == [Assign("c-rude", "drums", "#e69f00", 0)]


def test_an_undone_kick_lets_the_caller_play_again_at_once_and_tells_them() -> None:
    e = engine(kick_ban_s=120)
    e.handle(Join("c-rude", display="…12"), 0.0)
    e.handle(Command("kick", {"caller": "c-rude"}), 1.0)
    e.take_updates()
    assert [(b.caller, b.display, b.ban_s) for b in e.scene(31.0).banned] == [
        ("c-rude", "…12", 90.0)
    ]  # the console lists the ban, with its undo, while it runs
    e.handle(Command("unban", {"caller": "c-rude"}), 31.0)
    assert e.take_updates() == [Notice("c-rude", "unbanned")]
    assert e.scene(31.0).banned == ()
    e.handle(Join("c-rude"), 32.0)
    assert e.take_updates() == [Assign("c-rude", "drums", "#e69f00", 0)]


def test_an_undo_for_nobody_banned_changes_nothing_and_says_nothing() -> None:
    e = engine(kick_ban_s=5)
    e.handle(Join("c-rude"), 0.0)
    e.handle(Command("kick", {"caller": "c-rude"}), 1.0)
    e.take_updates()
    e.advance(7.0)  # the ban ran out on its own
    assert e.scene(7.0).banned == ()
    for caller in ("c-rude", "c-never"):
        e.handle(Command("unban", {"caller": caller}), 7.0)
    assert e.take_updates() == []


def test_the_state_lists_the_latest_kicks_first_and_a_bounded_few() -> None:
    e = engine(kick_ban_s=120, line_max=100)
    for n in range(BANNED_MAX + 3):
        e.handle(Join(f"c-{n}"), n)
        e.handle(Command("kick", {"caller": f"c-{n}"}), n + 0.5)
    banned = e.scene(30.0).banned
    assert len(banned) == BANNED_MAX
    assert banned[0].caller == f"c-{BANNED_MAX + 2}" and banned[0].ban_s == n + 0.5 + 120 - 30


def test_pause_keeps_new_callers_in_line_until_it_is_lifted() -> None:
    e = engine()
    e.handle(Command("pause", {"on": True}), 0.0)
    e.handle(Join("c-new"), 0.1)
    assert e.take_updates() == [Assign("c-new", None, None, 1)]
    e.handle(Command("pause", {"on": False}), 0.2)
    assert e.take_updates() == [Assign("c-new", "drums", "#e69f00", 0)]


# -- notes on the grid -----------------------------------------------------------------


def test_a_press_plays_on_the_next_step() -> None:
    e = engine()
    e.handle(Join("c-a"), 0.0)
    notes = e.handle(Digit("c-a", "1"), 0.2)  # between step 1 (0.125) and step 2 (0.25)
    on, off = notes
    assert on == NoteOn(0.25, 2, "drums", 9, 36, on.velocity)
    assert off == NoteOff(0.375, 3, "drums", 9, 36)
    assert abs(on.velocity - 0.8 * 110) <= 5  # an 8th: 80 % of the kit's 110, humanised


def test_velocities_follow_the_bar_downbeat_loudest_and_vary_a_little() -> None:
    e = engine()
    e.handle(Join("c-a"), 0.0)
    hits = [e.handle(Digit("c-a", "3"), t)[0] for t in (0.95, 1.2, 1.45, 1.95)]
    steps = [h.step for h in hits]
    assert steps == [8, 10, 12, 16]  # a beat, an 8th, a beat, the next bar's downbeat
    velocities = [h.velocity for h in hits]
    assert velocities[3] > velocities[0] > velocities[1] and velocities[2] > velocities[1]
    assert len({h.velocity for h in hits}) == 4


def test_a_press_just_after_a_step_plays_at_once() -> None:
    e = engine(grace_s=0.030)
    e.handle(Join("c-a"), 0.0)
    assert shape(e.handle(Digit("c-a", "1"), 0.25 + 0.029)) == [(0.279, "drums", 36)]
    assert shape(e.handle(Digit("c-a", "1"), 0.375 + 0.031)) == [(0.5, "drums", 36)]


def test_swing_delays_the_off_beat_sixteenths() -> None:
    grid = Grid(bpm=120, swing=0.25)
    assert grid.time_of(0) == 0.0
    assert grid.time_of(1) == pytest.approx(STEP * 1.25)
    assert grid.time_of(2) == pytest.approx(STEP * 2)
    assert grid.step_at(STEP * 1.1) == 0  # step 1 has not sounded yet
    assert grid.step_at(STEP * 1.3) == 1


def test_a_tempo_change_keeps_the_grid_continuous() -> None:
    grid = Grid(bpm=120)
    grid.set_bpm(60, now=0.3)  # during step 2
    assert grid.time_of(3) == pytest.approx(0.375)  # the next step keeps its place
    assert grid.time_of(4) == pytest.approx(0.375 + 0.25)


def test_digits_on_melodic_tracks_follow_the_chord_progression() -> None:
    h = Harmony(parse_key("C"), "major", parse_progression("I-V-vi-IV"))
    lead = DEFAULT_TRACKS[3]  # "scale" mode, octave 5
    bar = 16
    # Digit 1 is the current chord's root: C, G, A, F in the four bars.
    assert [h.notes_for(lead, 0, b * bar, 0) for b in range(4)] == [(72,), (79,), (81,), (77,)]
    bass = DEFAULT_TRACKS[1]  # chord tones: 1 root, 2 third, 3 fifth
    assert [h.notes_for(bass, i, 0, 0)[0] for i in range(3)] == [36, 40, 43]
    chords = DEFAULT_TRACKS[2]
    assert h.notes_for(chords, 0, 0, 0) == (60, 64, 67)
    assert h.notes_for(chords, 1, 0, 0) == (64, 67, 72)  # first inversion


def test_star_and_hash_shift_the_octave_of_melodic_tracks() -> None:
    e = engine()
    e.handle(Join("c-d"), 0.0)
    e.handle(Join("c-b"), 0.0)  # bass
    first = ons(e.handle(Digit("c-b", "1"), 0.2))[0][2]
    e.handle(Digit("c-b", "#"), 0.3)
    up = ons(e.handle(Digit("c-b", "1"), 0.4))[0][2]
    e.handle(Digit("c-b", "*"), 0.5)
    e.handle(Digit("c-b", "*"), 0.6)
    down = ons(e.handle(Digit("c-b", "1"), 0.7))[0][2]
    assert (up - first, down - first) == (12, -12)


def test_each_track_loops_what_its_caller_played_following_the_chords() -> None:
    e = engine(loop_bars=2)
    e.handle(Join("c-d"), 0.0)
    e.handle(Join("c-b"), 0.0)
    e.handle(Digit("c-b", "1"), 0.1)  # a bass on step 2 (the next 8th) of bar 0 (C)
    loop = shape(e.advance(12.5))  # 100 steps = 6 bars and a bit
    bar_s = 16 * STEP
    assert loop == [
        (round(2 * STEP + 2 * bar_s, 4), "bass", 36 + 9),  # bar 2: chord vi (A)
        (round(2 * STEP + 4 * bar_s, 4), "bass", 36),  # bar 4: chord I (C)
        (round(2 * STEP + 6 * bar_s, 4), "bass", 36 + 9),
    ]


def test_the_loop_holds_only_the_last_bars_of_play() -> None:
    e = engine(loop_bars=1, seat_order=("pluck",))  # a melody (drums play figures)
    e.handle(Join("c-d"), 0.0)
    e.handle(Digit("c-d", "1"), 0.1)  # step 1
    e.handle(Digit("c-d", "2"), 16 * STEP + 0.1)  # step 17: step 1's note is now too old
    e.advance(16 * STEP + 0.2)
    again = [n for n in e.advance(4 * 16 * STEP) if isinstance(n, NoteOn)]
    assert [n.step for n in again] == [33, 49]  # once a bar: step 1's note is gone


def test_a_departed_callers_loop_fades_out_over_a_few_bars() -> None:
    e = engine(loop_bars=1, fade_bars=4, seat_order=("pluck",))
    e.handle(Join("c-d"), 0.0)
    e.handle(Digit("c-d", "1"), 0.1)
    e.handle(Leave("c-d"), 0.2)
    velocities = [n.velocity for n in e.advance(10 * 16 * STEP) if isinstance(n, NoteOn)]
    # about 3/4, 1/2, 1/4 of the hit's velocity over four bars, then silence
    assert len(velocities) == 3 and velocities == sorted(velocities, reverse=True)
    assert velocities[2] < velocities[0] / 2


def test_a_muted_caller_makes_no_sound() -> None:
    e = engine()
    e.handle(Join("c-d"), 0.0)
    e.handle(Command("mute", {"caller": "c-d", "on": True}), 0.0)
    assert e.handle(Digit("c-d", "1"), 0.1) == []
    e.handle(Command("mute", {"caller": "c-d", "on": False}), 0.2)
    assert e.handle(Digit("c-d", "1"), 0.3) != []


def test_the_engine_plays_exactly_the_keys_and_scales_the_contract_names() -> None:
    assert tuple(SCALES) == SCALE_NAMES  # the console offers these, the relay lets them by
    assert NOTE_NAMES == KEY_NAMES and [parse_key(k) for k in KEY_NAMES] == list(range(12))


def test_tempo_key_and_scale_commands_change_what_plays() -> None:
    e = engine()
    e.handle(Join("c-d"), 0.0)
    e.handle(Join("c-b"), 0.0)
    e.handle(Command("key", {"key": "D"}), 0.0)
    e.handle(Command("scale", {"name": "minor"}), 0.0)
    e.handle(Command("tempo", {"bpm": 60}), 0.0)
    assert e.grid.bpm == 60
    notes = ons(e.handle(Digit("c-b", "2"), 0.05))  # the third of D minor: F
    assert notes[0][2] % 12 == 5
    e.handle(Command("scale", {"name": "nonsense"}), 0.1)  # refused, nothing breaks
    e.handle(Command("tempo", {"bpm": "fast"}), 0.1)
    e.handle(Command("kick", {}), 0.1)
    assert e.harmony.scale == "minor" and e.grid.bpm == 60


def test_panic_clears_every_loop_and_figure() -> None:
    e = engine()
    e.handle(Join("c-d"), 0.0)  # the drums: a figure
    e.handle(Join("c-b"), 0.0)  # the bass: a loop
    e.handle(Digit("c-d", "1"), 0.1)
    e.handle(Digit("c-b", "1"), 0.1)
    e.handle(Command("panic"), 0.2)
    assert e.advance(20.0) == []


def test_the_same_events_at_the_same_times_give_the_same_notes() -> None:
    def run() -> list[object]:
        e = Engine(EngineConfig(attract_after_s=3.0), start=0.0)
        out: list[object] = []
        out += e.advance(10.0)  # attract first
        for n in range(12):
            e.handle(Join(f"c-{n}"), 10.0 + n * 0.1)
        for i in range(200):
            who, digit = f"c-{i % 12}", "1234567890*#"[(i * 7) % 12]
            out += e.handle(Digit(who, digit), 11.0 + i * 0.037)
            out += e.advance(11.0 + i * 0.037, horizon=0.1)
        out += e.advance(60.0)
        out += e.take_updates()
        return out

    first, second = run(), run()
    assert first == second and len(first) > 200


# -- the scene ---------------------------------------------------------------------------


def test_notes_light_windows_in_the_tracks_colour_and_fade() -> None:
    e = engine()
    e.handle(Join("c-d", display="…12"), 0.0)
    e.handle(Digit("c-d", "1"), 0.2)
    assert e.scene(0.2).lit == ()  # the note sounds at 0.25
    scene = e.scene(0.25)
    lit = scene.lit
    assert scene.tracks[0].region == (0, 8)  # the only track playing: the whole building
    assert len(lit) == 1 and lit[0].color == "#e69f00" and lit[0].bay == 0
    assert lit[0].intensity == pytest.approx(1.0)
    assert e.scene(0.6).lit[0].intensity < 0.6
    assert e.scene(5.0).lit == ()


def test_the_state_event_has_designs_shape_and_never_a_number() -> None:
    e = engine()
    e.handle(Join("c-d", source="twilio", display=clean_display("+14155551212")), 0.0)
    e.handle(Join("c-k", nick=clean_nick("Ana 🎺 the great")), 0.0)
    state = e.scene(0.0).to_state()
    assert state["event"] == "state" and state["tempo"] == 120 and state["key"] == "C"
    assert state["facade"] == {"floors": 7, "bays": 8}
    assert state["tracks"][0] == {
        "name": "drums",
        "color": "#e69f00",
        "caller": "c-d",
        "display": "…12",
        "muted": False,
        "presses_min": 0,
        "last_press_s": None,
        "turn_left_s": None,
    }
    assert state["tracks"][1]["display"] == "Ana the great"
    assert "4155551212" not in repr(state)


@pytest.mark.parametrize(
    ("nick", "shown"),
    [
        ("Ana", "Ana"),
        ("  spaced   out  ", "spaced out"),
        ("<script>alert(1)</script>", "scriptalert1script"[:16]),
        ("call 4155551212", None),  # could be a number: never on the building
        ("", None),
        (42, None),
        ("x" * 40, "x" * 16),
    ],
)
def test_a_keypad_nickname_is_at_most_16_letters_digits_or_spaces(
    nick: object, shown: str | None
) -> None:
    assert clean_nick(nick) == shown


@pytest.mark.parametrize("tick", [0.001, 0.0137, 0.25])
def test_the_notes_do_not_depend_on_how_often_the_engine_is_advanced(tick: float) -> None:
    def run(tick: float) -> list[object]:
        e = Engine(EngineConfig(idle_s=2.0, attract_after_s=3.0), start=0.0)
        script = [(0.5 + i * 0.11, f"c-{i % 3}", "1357*#902468"[i % 12]) for i in range(40)]
        script += [(9.0, "c-9", "5")]  # after idle timeouts and the attract pattern
        out: list[object] = []
        now = 0.0
        for at, caller, digit in script:
            while now + tick < at:
                now += tick
                out += e.advance(now, 0.05)
            out += e.advance(at, 0.05)  # the scheduler renders up to an event first
            out += e.handle(Digit(caller, digit), at)
            out += e.take_updates()
        out += e.advance(20.0, 0.05)
        out += e.take_updates()
        return sorted(out, key=repr)

    assert run(tick) == run(0.005)


def test_the_state_names_waiting_callers_as_the_facade_would() -> None:
    e = engine()
    for n in range(8):
        e.handle(Join(f"c-{n}"), 0.0)
    e.handle(Join("c-phone", display="…77"), 0.0)
    e.handle(Join("c-kid", nick="Zoe"), 0.0)
    state = e.scene(0.0).to_state()
    assert state["line"] == ["c-phone", "c-kid"]
    assert state["waiting"] == [
        {"caller": "c-phone", "display": "…77"},
        {"caller": "c-kid", "display": "Zoe"},
    ]


# -- the waiting line ------------------------------------------------------------------


def full_house(e: Engine, waiting: int, at: float = 0.0) -> None:
    """Every track taken (c-0 … c-7) and `waiting` callers in line (w-0, w-1, …)."""
    for n in range(len(e.tracks)):
        e.handle(Join(f"c-{n}"), at)
    for n in range(waiting):
        e.handle(Join(f"w-{n}"), at)
    e.take_updates()


def test_a_join_to_a_full_line_is_told_so_and_not_kept() -> None:
    e = engine(line_max=2)
    full_house(e, waiting=2)
    e.handle(Join("c-late"), 1.0)
    assert e.take_updates() == [Left("c-late", "full")]
    assert "c-late" not in e.callers and len(e.line) == 2
    e.handle(Join("c-late"), 2.0)  # every join is answered
    assert e.take_updates() == [Left("c-late", "full")]
    e.handle(Leave("w-0"), 3.0)
    e.handle(Join("c-late"), 4.0)  # a place came free
    assert e.take_updates() == [Assign("w-1", None, None, 1), Assign("c-late", None, None, 2)]


def test_keys_from_a_caller_turned_away_are_answered_once_per_half_minute() -> None:
    e = engine(line_max=0)
    full_house(e, waiting=0)
    told = []
    for n in range(400):  # ten keys a second for forty seconds
        assert e.handle(Digit("c-keen", "5"), n / 10) == []
        told += [(n / 10, u) for u in e.take_updates()]
    assert told == [(0.0, Left("c-keen", "full")), (30.0, Left("c-keen", "full"))]


def test_a_turned_away_caller_gets_a_track_when_one_is_free() -> None:
    e = engine(line_max=0)
    full_house(e, waiting=0)
    e.handle(Digit("c-keen", "5"), 0.0)
    e.handle(Leave("c-3"), 1.0)
    e.take_updates()
    e.handle(Digit("c-keen", "5"), 2.0)
    assert e.take_updates() == [Assign("c-keen", "lead", "#d55e00", 0)]


def test_a_caller_let_in_and_gone_again_hears_the_line_is_full_anew() -> None:
    e = engine(line_max=1)
    full_house(e, waiting=1)
    e.handle(Digit("c-keen", "5"), 0.0)  # told: full
    e.handle(Leave("w-0"), 1.0)
    e.handle(Digit("c-keen", "5"), 2.0)  # in line
    e.handle(Leave("c-keen"), 3.0)
    e.handle(Join("w-1"), 4.0)  # full again
    e.take_updates()
    e.handle(Digit("c-keen", "5"), 5.0)
    assert e.take_updates() == [Left("c-keen", "full")]


def test_only_the_first_fifty_waiting_are_told_their_new_place() -> None:
    e = engine(line_max=200)
    full_house(e, waiting=120)
    e.handle(Leave("w-9"), 1.0)  # place 10 leaves: places 10 … 119 move up
    assert e.take_updates() == [Assign(f"w-{n + 1}", None, None, n + 1) for n in range(9, 50)]
    e.handle(Leave("c-0"), 2.0)  # a track frees: the front is seated, the rest move up
    behind = [f"w-{n}" for n in range(1, 120) if n != 9]
    assert e.take_updates() == [
        Assign("w-0", "drums", "#e69f00", 0),
        *(Assign(caller, None, None, place) for place, caller in enumerate(behind[:50], 1)),
    ]
    # Further back, a place is told when it crosses into the first fifty, or on a join.
    e.handle(Join("w-60"), 3.0)
    assert e.take_updates() == [Assign("w-60", None, None, 59)]


def test_the_line_moving_up_many_places_tells_each_caller_once() -> None:
    e = engine()
    e.handle(Command("pause", {"on": True}), 0.0)
    for n in range(30):
        e.handle(Join(f"w-{n}"), 0.0)
    e.take_updates()
    e.handle(Command("pause", {"on": False}), 1.0)  # eight seated at once
    updates = e.take_updates()
    assert updates[8:] == [Assign(f"w-{n + 8}", None, None, n + 1) for n in range(22)]
    assert len({u.caller for u in updates}) == len(updates)


def test_a_waiting_caller_silent_for_ten_minutes_leaves_the_line() -> None:
    e = engine(line_idle_s=600, idle_s=1e9, turn_s=1e9)
    full_house(e, waiting=3)
    e.handle(Digit("w-0", "5"), 300.0)  # a key keeps a waiting caller in line
    e.advance(599.9)
    assert e.take_updates() == []
    e.advance(600.1)
    assert e.take_updates() == [  # w-0 stays first: nobody ahead of them moved
        Left("w-1", "idle"),
        Left("w-2", "idle"),
    ]
    e.advance(900.1)
    assert e.take_updates() == [Left("w-0", "idle")]
    assert len(e.line) == 0 and len(e.callers) == 8


def test_the_state_event_stays_small_whatever_the_crowd() -> None:
    e = engine()  # line_max 200
    for n in range(10_000):
        e.handle(Join(f"c-{n:010d}", display=f"…{n % 100:02d}"), n / 1000)
        e.handle(Digit(f"c-{n % 8:010d}", "123456789"[n % 9]), n / 1000)
    state = e.scene(10.0).to_state()
    assert state["line_length"] == 200 and len(e.callers) == 208
    assert len(state["line"]) == len(state["waiting"]) == 20
    assert state["waiting"][0] == {"caller": "c-0000000008", "display": "…08"}
    assert state["lit"]  # the building is busy too
    assert len(orjson.dumps(state)) < 16 * 1024
