"""The scheduler thread plays notes on their step, whatever else happens.

Most tests run the scheduler's real thread on simulated time: a `ManualClock` that
moves only when the test moves it, in steps, each step waiting until the thread has
drawn a scene at the new time (its last act in a turn of its loop, after every note
due by then has left). What they check holds on any machine, however busy. One test
measures the real thing, how late notes leave on a real clock; it is marked `timing`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import pytest

from billboard.engine import Digit, Engine, EngineConfig, Join, Leave, NoteOff, NoteOn
from billboard.engine.events import Command, InputEvent
from billboard.engine.playback import play_events
from billboard.engine.scene import Scene
from billboard.outputs import ClockSink
from billboard.scheduler import LOOKAHEAD_S, MIDI_CLOCKS_PER_STEP, Scheduler

STEP_S = 0.02  # simulated time per step: more than a frame (1/60 s), so each draws a scene
CATCH_UP_S = 30.0  # real time the thread may take to catch up on one step, on a busy box


class RecordingSink:
    """Records each note with the time it left, read from `clock`."""

    name = "test"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.played: list[tuple[float, NoteOn | NoteOff]] = []
        self.panics = 0
        self.closed = False

    def note_on(self, note: NoteOn) -> None:
        with self.lock:
            self.played.append((self.clock(), note))

    def note_off(self, note: NoteOff) -> None:
        with self.lock:
            self.played.append((self.clock(), note))

    def panic(self) -> None:
        self.panics += 1

    def close(self) -> None:
        self.closed = True

    def note_ons(self) -> list[tuple[float, NoteOn]]:
        with self.lock:
            return [(t, n) for t, n in self.played if isinstance(n, NoteOn)]


class ManualClock:
    """Seconds that pass only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SimulatedShow:
    """A scheduler on its own thread, driven through simulated time in lockstep."""

    def __init__(
        self, *sinks: RecordingSink, midi_clock: ClockSink | None = None, **config: object
    ) -> None:
        # Callers alone unless a test asks for the groove bed.
        settings: dict[str, object] = {"bpm": 240, "style": "none"}
        settings.update(config)
        self.clock = ManualClock()
        for sink in sinks:
            sink.clock = self.clock
        engine = Engine(EngineConfig(**settings), start=self.clock.now)  # type: ignore[arg-type]
        self._drawn = threading.Condition()
        self._drawn_at = -math.inf
        self.scheduler = Scheduler(
            engine, sinks, clock=self.clock, midi_clock=midi_clock, on_scene=self._scene
        )
        self.scheduler.start()
        self.run_for(STEP_S)  # the thread is up and has drawn its first scene

    def _scene(self, scene: Scene) -> None:
        with self._drawn:
            self._drawn_at = scene.time
            self._drawn.notify_all()

    def submit(self, event: InputEvent) -> None:
        """`event` arrives now (its own time: the notes cannot depend on when the
        thread happens to pick it up)."""
        self.scheduler.submit(event, at=self.clock.now)

    def run_for(self, seconds: float) -> None:
        for _ in range(max(1, round(seconds / STEP_S))):
            self.clock.now += STEP_S
            with self._drawn:
                caught_up = self._drawn.wait_for(
                    lambda: self._drawn_at >= self.clock.now, timeout=CATCH_UP_S
                )
            assert caught_up, f"the scheduler's thread did not reach t={self.clock.now}"

    def stop(self) -> None:
        self.scheduler.stop()


def test_notes_leave_on_their_step_never_early_and_within_one_turn_of_the_clock() -> None:
    sink = RecordingSink()
    show = SimulatedShow(sink)
    show.submit(Join("c-a"))
    for _ in range(10):
        show.submit(Digit("c-a", "1"))
        show.run_for(0.1)
    show.run_for(0.6)  # loops repeat too
    show.stop()
    ons = sink.note_ons()
    assert len(ons) >= 10
    late = [t - n.time for t, n in ons]
    assert min(late) >= 0  # never early
    assert max(late) < STEP_S + 1e-9  # on the first turn of the loop at or after its time


def test_a_session_played_offline_gives_the_notes_the_live_scheduler_played() -> None:
    """`play_events` (rendering a night, measuring the music) is the scheduler without
    its clock: the same events at the same times, the same notes in the same order."""
    sink = RecordingSink()
    config = {"bpm": 240.0, "idle_s": 3.0, "style": "house"}  # the bed plays too
    show = SimulatedShow(sink, **config)
    start = show.scheduler.engine.grid.time_of(0)  # when the show began
    events: list[tuple[float, InputEvent]] = []

    def send(event: InputEvent) -> None:
        events.append((show.clock.now, event))
        show.submit(event)

    send(Join("c-a"))
    send(Join("c-b"))
    for n, key in enumerate("1*2#38504"):
        send(Digit("c-a" if n % 3 else "c-b", key))
        show.run_for(0.06 * (1 + n % 4))
    show.run_for(2.0)  # their loops repeat
    send(Command("tempo", {"bpm": 180.0}))
    show.run_for(1.0)
    send(Leave("c-b"))
    show.run_for(4.0)  # c-a idles out, the bed goes on alone
    until = show.clock.now
    show.stop()
    live = [note for _, note in sink.played]

    engine = Engine(EngineConfig(**config), start=start)  # type: ignore[arg-type]
    offline = play_events(engine, events, until, LOOKAHEAD_S)

    played = [n for n in offline if n.time <= until]
    assert len(played) > 40
    assert played == live[: len(played)]

    # After `until` the live show only ended what still sounded (its stop, in no
    # particular order); so does the offline session, at each note's own time.
    def key(n: NoteOn | NoteOff) -> tuple[str, int, int]:
        return (n.track, n.channel, n.note)

    ended_live, ended_offline = live[len(played) :], offline[len(played) :]
    assert all(isinstance(n, NoteOff) for n in ended_live + ended_offline)
    assert sorted(map(key, ended_live)) == sorted(map(key, ended_offline))


def test_offline_a_panic_ends_what_sounds_at_its_time_and_drops_what_was_to_come() -> None:
    engine = Engine(EngineConfig(bpm=60, style="none"), start=0.0)
    events: list[tuple[float, InputEvent]] = [
        (0.0, Join("c-a")),
        (0.1, Digit("c-a", "1")),  # a loop: it would play again every 8 s
        (0.3, Command("panic")),
    ]
    notes = play_events(engine, events, until=20.0, lookahead=LOOKAHEAD_S)
    assert [type(n).__name__ for n in notes] == ["NoteOn", "NoteOff"]
    assert notes[1].time == 0.3


def test_stopping_ends_every_sounding_note_and_closes_the_outputs() -> None:
    sink = RecordingSink()
    show = SimulatedShow(sink, tracks=EngineConfig().tracks)
    show.submit(Join("c-pad"))
    for n in range(6):  # the chords and pad tracks have long notes
        show.submit(Join(f"c-{n}"))
    for n in range(6):
        show.submit(Digit(f"c-{n}", "3"))
    show.run_for(0.3)
    assert sink.note_ons()  # some notes still sound as the show stops
    show.stop()
    sounding: dict[tuple[str, int], int] = {}
    for _, note in sink.played:
        key = (note.track, note.note)
        sounding[key] = sounding.get(key, 0) + (1 if isinstance(note, NoteOn) else -1)
    assert sounding and all(count <= 0 for count in sounding.values())
    assert sink.closed and sink.panics >= 1


def test_panic_silences_at_once_and_drops_what_was_queued() -> None:
    sink = RecordingSink()
    show = SimulatedShow(sink, bpm=60)
    show.submit(Join("c-a"))
    show.submit(Join("c-b"))
    show.submit(Digit("c-b", "1"))
    show.run_for(0.36)
    show.submit(Command("panic"))
    show.run_for(STEP_S)
    assert sink.panics >= 1
    count = len(sink.played)
    show.run_for(0.6)
    show.stop()
    assert len(sink.played) == count  # nothing more after the panic (until stop)


def test_an_output_that_fails_does_not_stop_the_others() -> None:
    class Broken(RecordingSink):
        def note_on(self, note: NoteOn) -> None:
            raise OSError("port vanished")

    good, bad = RecordingSink(), Broken()
    show = SimulatedShow(bad, good)
    show.submit(Join("c-a"))
    show.submit(Digit("c-a", "1"))
    show.run_for(0.3)
    show.stop()
    assert good.note_ons()


# How late a note may leave on a real clock, in the middle of a run: a thread woken on
# an idle machine takes well under a millisecond; on two cores that other processes
# keep busy it waits its turn for the CPU, often for a few milliseconds.
MEDIAN_LATE_S = 0.010


@pytest.mark.timing
class FollowedClock:
    """A MIDI beat clock that records what it sends; `joined` plays a synth being
    patched in (MidiOut's JACK watch sets the same flag)."""

    name = "clock"

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.joined = threading.Event()

    def clock_start(self) -> None:
        self.sent.append("start")

    def clock_tick(self) -> None:
        self.sent.append("tick")

    def clock_stop(self) -> None:
        self.sent.append("stop")

    def sync_requested(self) -> bool:
        joined = self.joined.is_set()
        self.joined.clear()
        return joined

    def clock_sync(self, sixteenths: int) -> None:
        self.sent.append(f"sync {sixteenths}")


def synced_on_a_16th(sent: list[str]) -> int:
    """The 16th the one sync in `sent` named, checked to come just before that 16th's
    first clock (MIDI 1.0: a follower plays on from Song Position at the next clock)."""
    [at] = [i for i, what in enumerate(sent) if what.startswith("sync")]
    ticks_before = sent[:at].count("tick")
    assert ticks_before % MIDI_CLOCKS_PER_STEP == 0
    assert sent[at] == f"sync {ticks_before // MIDI_CLOCKS_PER_STEP}"
    assert sent[at + 1] == "tick"
    return ticks_before // MIDI_CLOCKS_PER_STEP


def test_a_synth_that_joins_mid_show_is_told_the_song_position_just_before_a_16th() -> None:
    clock = FollowedClock()
    show = SimulatedShow(midi_clock=clock)  # 240 BPM: a 16th every 62.5 ms
    show.run_for(0.5)
    clock.joined.set()
    show.run_for(0.5)
    show.stop()

    assert clock.sent[0] == "start"
    assert synced_on_a_16th(clock.sent) >= 8  # after 0.5 s, eight 16ths in
    assert clock.sent[-1] == "stop"


def test_the_operators_midi_sync_command_syncs_on_the_next_16th() -> None:
    clock = FollowedClock()
    show = SimulatedShow(midi_clock=clock)
    show.run_for(0.3)
    show.submit(Command("midi_sync", {}))
    show.run_for(0.3)
    show.stop()

    assert synced_on_a_16th(clock.sent) >= 4


def test_on_a_real_clock_notes_leave_on_their_step_not_on_a_frame() -> None:
    sink = RecordingSink()
    engine = Engine(EngineConfig(bpm=240, style="none"), start=time.monotonic())
    scheduler = Scheduler(engine, [sink])
    scheduler.start()
    scheduler.submit(Join("c-a"))
    for _ in range(10):
        scheduler.submit(Digit("c-a", "1"))
        time.sleep(0.09)
    time.sleep(0.6)  # loops repeat too
    scheduler.stop()
    ons = sink.note_ons()
    assert len(ons) >= 10
    late = [t - n.time for t, n in ons]
    assert min(late) >= -0.001  # never early
    assert sorted(late)[len(late) // 2] < MEDIAN_LATE_S  # and on time, a frame is 16.7 ms
