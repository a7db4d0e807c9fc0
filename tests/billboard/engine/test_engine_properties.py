"""What holds for any crowd: generated sequences of joins, keys, leaves and commands at
increasing times, with the clock advanced in between, never break the engine's
promises about notes, tracks and the waiting line.

Examples are derandomised (the same ones on every run) and few enough for CI.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from billboard.engine import (
    Assign,
    Command,
    Digit,
    Engine,
    EngineConfig,
    InputEvent,
    Join,
    Leave,
    Left,
    Note,
    NoteOff,
    NoteOn,
)
from billboard.engine.engine import RETOLD_PLACES
from billboard.engine.tracks import DEFAULT_TRACKS
from relay.contract.events import COMMANDS, LEAVE_REASONS
from relay.contract.events import PLAY_KEYS as DIGITS

PROPERTIES = settings(max_examples=200, deadline=None, derandomize=True)

CALLERS = [f"c-{n}" for n in range(12)]
callers = st.sampled_from(CALLERS)

# Command arguments, sensible and not: the engine must shrug off the wrong ones.
ARG_VALUES = st.one_of(
    st.sampled_from(CALLERS),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["C", "F#", "Bb", "H", "major", "minor", "dorian", "klingon", ""]),
    st.none(),
)
ARGS = st.dictionaries(
    st.sampled_from(["caller", "on", "bpm", "key", "name", "x"]), ARG_VALUES, max_size=3
)

EVENTS: st.SearchStrategy[InputEvent] = st.one_of(
    st.builds(Join, callers, st.sampled_from(["twilio", "web"]), st.sampled_from([None, "…12"])),
    st.builds(Digit, callers, st.sampled_from(sorted(DIGITS))),
    st.builds(Leave, callers, st.sampled_from(sorted(LEAVE_REASONS))),
    st.builds(Command, st.sampled_from(sorted(COMMANDS)), ARGS),
)


@dataclass(frozen=True)
class Advance:
    horizon: float


# Each step: a wait (seconds), then an event or a call of `advance`.
STEPS = st.lists(
    st.tuples(
        st.floats(0.0, 8.0),
        st.one_of(EVENTS, st.builds(Advance, st.sampled_from([0.0, 0.05, 0.5]))),
    ),
    max_size=60,
)

CONFIGS = st.builds(
    EngineConfig,
    tracks=st.integers(1, 3).map(lambda n: DEFAULT_TRACKS[:n]),
    bpm=st.sampled_from([60.0, 112.0, 240.0]),
    swing=st.sampled_from([0.0, 0.33, 0.5]),
    idle_s=st.sampled_from([1.0, 10.0, 30.0]),
    turn_s=st.sampled_from([2.0, 20.0, 180.0]),
    kick_ban_s=st.sampled_from([0.0, 5.0, 120.0]),
    line_max=st.integers(0, 4),
    line_idle_s=st.sampled_from([3.0, 15.0, 600.0]),
    loop_bars=st.integers(1, 2),
    fade_bars=st.integers(0, 2),
    attract_after_s=st.sampled_from([0.0, 5.0, 1e9]),
)


def run(config: EngineConfig, steps: list[tuple[float, InputEvent | Advance]]) -> Engine:
    """Play `steps`, checking the engine's promises after each one."""
    engine = Engine(config, start=0.0)
    notes: list[Note] = []
    told: dict[str, Assign] = {}  # the last Assign each caller heard
    now = 0.0
    for wait, what in steps:
        now += wait
        before = {c: (e.track, e.last_active, e.since) for c, e in engine.callers.items()}
        if isinstance(what, Advance):
            notes += engine.advance(now, what.horizon)
        else:
            notes += engine.handle(what, now)
        updates = engine.take_updates()
        if isinstance(what, Advance):
            check_timeouts(engine, before, updates, now + what.horizon)
        for update in updates:
            if isinstance(update, Assign):
                told[update.caller] = update
            else:
                assert isinstance(update, Left)
                told.pop(update.caller, None)
        check_callers(engine, told)
    notes += engine.advance(now + 60.0)  # every loop and fade plays out
    check_notes(notes)
    return engine


def check_callers(engine: Engine, told: dict[str, Assign]) -> None:
    waiting = list(engine.line)
    assert len(waiting) == len(set(waiting)) == len(engine.line)
    assert len(waiting) <= engine.config.line_max
    for index, track in enumerate(engine.tracks):
        if track.caller is not None:  # a track points at its caller, who points back
            assert engine.callers[track.caller].track == index
            assert told[track.caller] == Assign(track.caller, track.spec.name, track.spec.color, 0)
    for caller, entry in engine.callers.items():
        if entry.track is None:
            assert caller in engine.line
        else:
            assert caller not in engine.line
            assert engine.tracks[entry.track].caller == caller
    for place, caller in enumerate(waiting, start=1):
        heard = told[caller].line  # told a place, and never one sooner than the truth
        assert heard == place if place <= RETOLD_PLACES else heard >= place


def check_timeouts(
    engine: Engine,
    before: dict[str, tuple[int | None, float, float]],
    updates: list[Assign | Left],
    until: float,
) -> None:
    """Nobody is freed before their limit, nobody stays past it (up to `until`)."""
    cfg = engine.config
    seated = set()  # seated during this advance, at a step time the test cannot see
    for update in updates:
        if isinstance(update, Assign) and update.track is not None:
            seated.add(update.caller)
        elif isinstance(update, Left) and update.caller in before.keys() - seated:
            track, last_active, since = before[update.caller]
            if update.reason == "idle":
                limit = cfg.line_idle_s if track is None else cfg.idle_s
                assert until - last_active >= limit
            if update.reason == "turn":
                assert track is not None and until - since >= cfg.turn_s
    rendered = engine.grid.time_of(engine.rendered)
    for entry in engine.callers.values():
        limit = cfg.line_idle_s if entry.track is None else cfg.idle_s
        assert rendered - entry.last_active < limit


def check_notes(notes: list[Note]) -> None:
    """Every note-on has its own note-off, at the same time or later."""
    ons: defaultdict[tuple[int, int], list[float]] = defaultdict(list)
    offs: defaultdict[tuple[int, int], list[float]] = defaultdict(list)
    for note in notes:
        (ons if isinstance(note, NoteOn) else offs)[(note.channel, note.note)].append(note.time)
    assert ons.keys() == offs.keys()
    for key, times in ons.items():
        # Pairing the i-th earliest on with the i-th earliest off is the best matching.
        assert len(times) == len(offs[key])
        for on, off in zip(sorted(times), sorted(offs[key]), strict=True):
            assert off >= on, (key, on, off)
    assert all(isinstance(n, NoteOn | NoteOff) for n in notes)


@PROPERTIES
@given(CONFIGS, STEPS)
def test_any_crowd_keeps_tracks_notes_and_the_line_consistent(
    config: EngineConfig, steps: list[tuple[float, InputEvent | Advance]]
) -> None:
    run(config, steps)


# A crowd larger than the retold window: joins of many at once, leaves of anyone.
CROWD_STEPS = st.lists(
    st.tuples(
        st.floats(0.0, 3.0),
        st.one_of(
            st.tuples(st.just("crowd"), st.integers(0, 90), st.integers(1, 40)),
            st.tuples(st.just("leave"), st.integers(0, 129), st.just(1)),
            st.tuples(st.just("press"), st.integers(0, 129), st.just(1)),
            st.tuples(st.just("advance"), st.just(0), st.just(0)),
        ),
    ),
    max_size=40,
)


@PROPERTIES
@given(st.integers(1, 3), st.integers(40, 90), CROWD_STEPS)
def test_a_long_line_tells_true_places_and_stays_within_its_cap(
    tracks: int, line_max: int, steps: list[tuple[float, tuple[str, int, int]]]
) -> None:
    config = EngineConfig(
        tracks=DEFAULT_TRACKS[:tracks], line_max=line_max, idle_s=20.0, line_idle_s=40.0
    )
    script: list[tuple[float, InputEvent | Advance]] = []
    for wait, (what, first, count) in steps:
        if what == "crowd":  # `count` callers join together
            for n in range(first, first + count):
                script.append((wait if n == first else 0.0, Join(f"c-{n}")))
        elif what == "leave":
            script.append((wait, Leave(f"c-{first}")))
        elif what == "press":
            script.append((wait, Digit(f"c-{first}", "5")))
        else:
            script.append((wait, Advance(0.05)))
    engine = run(config, script)
    assert len(engine.line) <= line_max
