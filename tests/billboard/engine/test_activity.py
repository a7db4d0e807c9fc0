"""What the operator reads to choose whom to kick: each playing caller's presses a
minute, seconds since their last press, and seconds left in their turn while others
wait — in the scene and in the `state` event, in simulated time."""

from __future__ import annotations

from billboard.engine import Digit, Engine, EngineConfig, Join
from billboard.engine.scene import Activity
from relay.contract.events import State, read_billboard


def engine(**changes: object) -> Engine:
    settings: dict[str, object] = {"bpm": 120, "swing": 0.0, "style": "none", "seat_order": ()}
    settings.update(changes)
    return Engine(EngineConfig(**settings), start=0.0)  # type: ignore[arg-type]


def activity(e: Engine, now: float, track: int = 0) -> Activity | None:
    return e.scene(now).tracks[track].activity


def test_a_new_caller_has_pressed_nothing_and_a_free_track_has_no_activity() -> None:
    e = engine(idle_s=1e9)
    e.handle(Join("c-a"), 0.0)
    assert activity(e, 1.0) == Activity(0, None, None)
    assert activity(e, 1.0, track=1) is None
    state = e.scene(1.0).to_state()
    assert "presses_min" not in state["tracks"][1]  # free tracks stay small


def test_presses_a_minute_count_the_last_sixty_seconds_only() -> None:
    e = engine(idle_s=1e9)
    e.handle(Join("c-a"), 0.0)
    for n in range(10):
        e.handle(Digit("c-a", "5"), 1.0 + n)  # 1 … 10 s
    assert activity(e, 10.5) == Activity(10, 0.5, None)
    assert activity(e, 65.5).presses_min == 5  # type: ignore[union-attr]  # 6 … 10 s
    assert activity(e, 69.5).presses_min == 1  # type: ignore[union-attr]
    assert activity(e, 70.0).presses_min == 0  # type: ignore[union-attr]
    assert activity(e, 70.0).last_press_s == 60.0  # type: ignore[union-attr]


def test_the_last_press_is_whole_seconds_ago_in_the_state() -> None:
    e = engine(idle_s=1e9)
    e.handle(Join("c-a"), 0.0)
    e.handle(Digit("c-a", "1"), 2.0)
    track = e.scene(5.7).to_state()["tracks"][0]
    assert (track["presses_min"], track["last_press_s"], track["turn_left_s"]) == (1, 3, None)


def test_turn_left_shows_only_while_others_wait_and_counts_down_to_the_turns_end() -> None:
    e = engine(tracks=engine().config.tracks[:1], turn_s=180, idle_s=1e9)
    e.handle(Join("c-a"), 0.0)
    assert activity(e, 10.0).turn_left_s is None  # type: ignore[union-attr]  # nobody waits
    e.handle(Join("c-b"), 20.0)  # the only track is taken: c-b waits
    assert activity(e, 20.0).turn_left_s == 160.0  # type: ignore[union-attr]
    assert e.scene(99.6).to_state()["tracks"][0]["turn_left_s"] == 81  # 80.4 s: still 81
    e.advance(180.1)  # the turn ends; c-b takes the track, with a turn of their own
    assert e.scene(180.1).tracks[0].caller == "c-b"
    assert activity(e, 180.1) == Activity(0, None, None)  # nobody waits now


def test_a_waiting_callers_presses_do_not_count_and_a_new_track_starts_afresh() -> None:
    e = engine(tracks=engine().config.tracks[:1], turn_s=30, idle_s=1e9)
    e.handle(Join("c-a"), 0.0)
    e.handle(Join("c-b"), 0.0)
    e.handle(Join("c-c"), 0.0)
    for n in range(5):
        e.handle(Digit("c-a", "1"), 1.0 + n)
        e.handle(Digit("c-b", "2"), 1.0 + n)  # waiting: keeps them in line, plays nothing
    assert activity(e, 6.0).presses_min == 5  # type: ignore[union-attr]
    e.advance(30.5)
    assert e.scene(30.5).tracks[0].caller == "c-b"
    assert activity(e, 30.5) == Activity(0, None, 29.5)  # c-c still waits: a turn of 30 s


def test_the_activity_reads_back_from_the_wire_and_strange_figures_are_dropped() -> None:
    e = engine(idle_s=1e9)
    e.handle(Join("c-a"), 0.0)
    e.handle(Digit("c-a", "1"), 1.0)
    data = e.scene(4.0).to_state()
    state = read_billboard(data)
    assert isinstance(state, State)
    track = state.tracks[0]
    assert (track.presses_min, track.last_press_s, track.turn_left_s) == (1, 3, None)
    assert state.to_data()["tracks"] == data["tracks"]
    data["tracks"][0] |= {"presses_min": -1, "last_press_s": "3", "turn_left_s": float("nan")}
    strange = read_billboard(data)
    assert isinstance(strange, State)
    assert strange.tracks[0].presses_min is None and strange.tracks[0].last_press_s is None
    assert strange.tracks[0].turn_left_s is None
