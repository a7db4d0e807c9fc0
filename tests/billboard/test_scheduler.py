"""The scheduler thread plays notes on their step, whatever else happens."""

from __future__ import annotations

import threading
import time

from billboard.engine import Digit, Engine, EngineConfig, Join, NoteOff, NoteOn
from billboard.engine.events import Command
from billboard.scheduler import Scheduler


class RecordingSink:
    name = "test"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.played: list[tuple[float, NoteOn | NoteOff]] = []
        self.panics = 0
        self.closed = False

    def note_on(self, note: NoteOn) -> None:
        with self.lock:
            self.played.append((time.monotonic(), note))

    def note_off(self, note: NoteOff) -> None:
        with self.lock:
            self.played.append((time.monotonic(), note))

    def panic(self) -> None:
        self.panics += 1

    def close(self) -> None:
        self.closed = True


def start(sink: RecordingSink, **config: object) -> Scheduler:
    settings: dict[str, object] = {"bpm": 240, "attract_after_s": 1e9}
    settings.update(config)
    engine = Engine(EngineConfig(**settings), start=time.monotonic())  # type: ignore[arg-type]
    scheduler = Scheduler(engine, [sink])
    scheduler.start()
    return scheduler


def test_notes_leave_on_their_step_not_on_a_frame() -> None:
    sink = RecordingSink()
    scheduler = start(sink)
    scheduler.submit(Join("c-a"))
    for _ in range(10):
        scheduler.submit(Digit("c-a", "1"))
        time.sleep(0.09)
    time.sleep(0.6)  # loops repeat too
    scheduler.stop()
    ons = [(t, n) for t, n in sink.played if isinstance(n, NoteOn)]
    assert len(ons) >= 10
    late = [t - n.time for t, n in ons]
    assert min(late) >= -0.001  # never early
    assert sorted(late)[len(late) // 2] < 0.005  # and on time (generous: a busy CI box)


def test_stopping_ends_every_sounding_note_and_closes_the_outputs() -> None:
    sink = RecordingSink()
    scheduler = start(sink, tracks=EngineConfig().tracks)
    scheduler.submit(Join("c-pad"))
    for n in range(6):  # the chords and pad tracks have long notes
        scheduler.submit(Join(f"c-{n}"))
    for n in range(6):
        scheduler.submit(Digit(f"c-{n}", "3"))
    time.sleep(0.3)
    scheduler.stop()
    sounding: dict[tuple[str, int], int] = {}
    for _, note in sink.played:
        key = (note.track, note.note)
        sounding[key] = sounding.get(key, 0) + (1 if isinstance(note, NoteOn) else -1)
    assert sounding and all(count <= 0 for count in sounding.values())
    assert sink.closed and sink.panics >= 1


def test_panic_silences_at_once_and_drops_what_was_queued() -> None:
    sink = RecordingSink()
    scheduler = start(sink, bpm=60)
    scheduler.submit(Join("c-a"))
    scheduler.submit(Join("c-b"))
    scheduler.submit(Digit("c-b", "1"))
    time.sleep(0.35)
    scheduler.submit(Command("panic"))
    time.sleep(0.1)
    count = len(sink.played)
    time.sleep(0.6)
    scheduler.stop()
    assert sink.panics >= 1
    assert len(sink.played) == count  # nothing more after the panic (until stop)


def test_an_output_that_fails_does_not_stop_the_others() -> None:
    class Broken(RecordingSink):
        def note_on(self, note: NoteOn) -> None:
            raise OSError("port vanished")

    good, bad = RecordingSink(), Broken()
    engine = Engine(EngineConfig(bpm=240, attract_after_s=1e9), start=time.monotonic())
    scheduler = Scheduler(engine, [bad, good])
    scheduler.start()
    scheduler.submit(Join("c-a"))
    scheduler.submit(Digit("c-a", "1"))
    time.sleep(0.3)
    scheduler.stop()
    assert any(isinstance(n, NoteOn) for _, n in good.played)
