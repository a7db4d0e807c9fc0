"""The show bench/grid_timing.py measures: the real engine driven by the scheduler's
thread (or, for the baseline, from the draw loop), a relay thread pressing keys, the
display drawing at 60 fps, and a sink that stamps when each note-on is handed over."""

from __future__ import annotations

import argparse
import heapq
import itertools
import multiprocessing
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol

import pygame

from bench.grid_jack import Probe
from billboard.display import Banner, Display
from billboard.engine import (
    Digit,
    Engine,
    EngineConfig,
    InputEvent,
    Join,
    Note,
    NoteOff,
    NoteOn,
    Scene,
)
from billboard.midi_out import MidiOut
from billboard.scheduler import Scheduler

ROOT = Path(__file__).resolve().parents[1]

FPS = 60
SIZE = (1920, 1080)
CALLERS = 12  # 8 take the tracks, 4 wait in line
PLAYERS = 8
DIGITS = "0123456789*#"
BANNER = Banner("+1 555 010 0199", "https://dialjam.example.org/k/dialjam")


class TimedSink:
    """A thin sink around the MIDI port: stamps the moment `note_on` is called on it.

    `inner` None is a sink that only timestamps (no JACK)."""

    name = "timed-midi"

    def __init__(self, inner: MidiOut | None) -> None:
        self.inner = inner
        # (called at, returned at, the note): appended on the scheduler thread only.
        self.ons: list[tuple[float, float, NoteOn]] = []

    def note_on(self, note: NoteOn) -> None:
        called = time.monotonic()
        if self.inner is not None:
            self.inner.note_on(note)
        self.ons.append((called, time.monotonic(), note))

    def note_off(self, note: NoteOff) -> None:
        if self.inner is not None:
            self.inner.note_off(note)

    def panic(self) -> None:
        if self.inner is not None:
            self.inner.panic()

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()


class Driver(Protocol):
    """What drives the engine: the scheduler's thread, or the frame-locked baseline."""

    on_event: Callable[[InputEvent, float], None] | None

    def submit(self, event: InputEvent, at: float | None = None) -> None: ...


class FrameLocked:
    """The baseline: a billboard without a scheduler thread, whose draw loop applies
    the presses that came in and sends the notes that fell due since the last frame,
    once a frame. A note on the grid then leaves at the first frame after its step,
    a draw's length later at worst; this is what the scheduler thread is for."""

    def __init__(self, engine: Engine, sinks: list[TimedSink]) -> None:
        self.engine = engine
        self.sinks = sinks
        self.on_event: Callable[[InputEvent, float], None] | None = None
        self._inbox: queue.SimpleQueue[InputEvent] = queue.SimpleQueue()
        self._notes: list[tuple[float, int, Note]] = []
        self._order = itertools.count()
        self.scene = engine.scene(time.monotonic())

    def submit(self, event: InputEvent, at: float | None = None) -> None:
        self._inbox.put(event)

    def frame(self, now: float) -> Scene:
        """One turn of the draw loop: events, due notes, then the scene to draw."""
        engine = self.engine
        while True:
            try:
                event = self._inbox.get_nowait()
            except queue.Empty:
                break
            self._queue(engine.advance(now))
            if self.on_event is not None:
                self.on_event(event, now)
            self._queue(engine.handle(event, now))
        self._queue(engine.advance(now))
        notes = self._notes
        while notes and notes[0][0] <= now:
            _, _, note = heapq.heappop(notes)
            for sink in self.sinks:
                if isinstance(note, NoteOn):
                    sink.note_on(note)
                else:
                    sink.note_off(note)
        engine.take_updates()
        self.scene = engine.scene(now)
        return self.scene

    def _queue(self, notes: list[Note]) -> None:
        for note in notes:
            heapq.heappush(self._notes, (note.time, next(self._order), note))

    def stop(self) -> None:
        offs = [n for _, _, n in self._notes if isinstance(n, NoteOff)]
        self._notes.clear()
        for note in offs:
            for sink in self.sinks:
                sink.note_off(note)
        for sink in self.sinks:
            sink.panic()
            sink.close()


class Presses:
    """The relay thread: joins, then digits at `rate` a second from the 8 players."""

    def __init__(self, scheduler: Driver, rate: float, seed: int = 7) -> None:
        self.scheduler = scheduler
        self.rate = rate
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        # id(event) → (event, when it was submitted); the event is kept so ids stay unique
        self.submitted: dict[int, tuple[InputEvent, float]] = {}
        # (the time the engine applied it at, when it was submitted): scheduler thread
        self.applied: list[tuple[float, float]] = []
        self.count = 0
        self.thread = threading.Thread(target=self._run, name="bench-relay", daemon=True)

    def on_event(self, event: InputEvent, at: float) -> None:
        """The scheduler's `on_event` hook: which press was applied at which time."""
        entry = self.submitted.pop(id(event), None)
        if entry is not None:
            self.applied.append((at, entry[1]))

    def _submit(self, event: InputEvent) -> None:
        self.submitted[id(event)] = (event, time.monotonic())
        self.scheduler.submit(event)
        self.count += 1

    def _run(self) -> None:
        for i in range(CALLERS):
            self._submit(Join(f"c-bench{i:02d}", "twilio", f"…{10 + i}"))
        due = time.monotonic()
        while not self.stop.is_set():
            due += self.rng.expovariate(self.rate)
            delay = due - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            caller = f"c-bench{self.rng.randrange(PLAYERS):02d}"
            self._submit(Digit(caller, self.rng.choice(DIGITS), "twilio"))


def machine_cpu() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user … steal; guest time is already in user
    return (total - idle) / hz, total / hz


def own_cpu() -> float:
    """CPU seconds this process has used so far."""
    times = os.times()
    return times.user + times.system


@dataclass
class Run:
    ons: list[tuple[float, float, NoteOn]]
    applied: list[tuple[float, float]]
    frame_tops: list[float]
    draws: list[tuple[float, float]]
    arrivals: list[tuple[float, tuple[int, ...]]]
    scheduler_lateness: list[float]
    scheduler_press_latency: list[float]
    measure_from: float
    measure_until: float
    presses: int
    midi_name: str | None
    display: str
    notes: str  # who sent them: "scheduler" or "frame" (the baseline)
    cpu: str


class Drawer:
    """Draws the live scene at each frame: in this thread (as frontend.py does), in a
    process of its own (``--display child``, a proposed fix), or not at all."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.draws: list[tuple[float, float]] = []  # (began, ended), time.monotonic()
        self._display: Display | None = None
        self._conn: Connection | None = None
        self._child: BaseProcess | None = None
        if where == "thread":
            pygame.display.init()
            pygame.font.init()
            self._display = Display(size=SIZE, fullscreen=False, banner=BANNER)
        elif where == "child":
            ctx = multiprocessing.get_context("spawn")
            self._conn, theirs = ctx.Pipe()
            self._child = ctx.Process(target=draw_in_child, args=(theirs,), daemon=True)
            self._child.start()
            self._conn.recv()  # ready

    def frame(self, scene: Scene) -> None:
        if self._display is not None:
            pygame.event.pump()
            began = time.monotonic()
            self._display.draw(scene)
            self.draws.append((began, time.monotonic()))
        elif self._conn is not None:
            self._conn.send(scene)

    def close(self) -> None:
        if self._display is not None:
            self._display.close()
        if self._conn is not None and self._child is not None:
            self._conn.send(None)
            self.draws = self._conn.recv()
            self._child.join(5)


def draw_in_child(conn: Connection) -> None:
    """The display's process for ``--display child``: draw each scene received."""
    pygame.display.init()
    pygame.font.init()
    display = Display(size=SIZE, fullscreen=False, banner=BANNER)
    draws: list[tuple[float, float]] = []
    conn.send("ready")
    while (scene := conn.recv()) is not None:
        pygame.event.pump()
        began = time.monotonic()
        display.draw(scene)
        draws.append((began, time.monotonic()))
    display.close()
    conn.send(draws)


def cpu_share(
    before: tuple[float, float] | None, after: tuple[float, float] | None, own: float
) -> str:
    """How busy the machine was during the run, and how much of that was us."""
    if before is None or after is None or after[1] <= before[1]:
        return "CPU use unknown"
    cpus = os.cpu_count() or 1
    busy, total = after[0] - before[0], after[1] - before[1]
    others = max(0.0, busy - own)
    return (
        f"CPU during the run: machine {100 * busy / total:.0f} % busy over {cpus} CPUs; "
        f"this process {100 * own / total:.0f} %, everything else (jackd, the probe, "
        f"a display child, other users) {100 * others / total:.0f} %"
    )


def run_show(
    args: argparse.Namespace,
    midi: MidiOut | None,
    probe: Probe | None,
    notes: str = "scheduler",
) -> Run:
    """One show of ``args.duration`` seconds. `notes` is who sends them: the
    scheduler's thread (``scheduler``) or the draw loop, once a frame (``frame``, the
    baseline)."""
    sink = TimedSink(midi)
    config = EngineConfig(attract_after_s=1e9, idle_s=1e9, turn_s=1e9)
    drawer = Drawer(args.display)
    engine = Engine(config, start=time.monotonic())
    scheduler: Scheduler | None = None
    locked: FrameLocked | None = None
    driver: Driver
    speakers = None
    if notes == "frame":
        driver = locked = FrameLocked(engine, [sink])
    else:
        sinks: list[Any] = [sink]
        if getattr(args, "sound", False):
            from billboard.sound import SoundOut  # opens pygame.mixer: only when asked

            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
            speakers = SoundOut(ROOT / "sounds", config.tracks, bpm=config.bpm)
            sinks.insert(0, speakers)  # the show opens the speakers before MIDI
        driver = scheduler = Scheduler(engine, sinks, midi_clock=midi)
    presses = Presses(driver, args.rate)
    driver.on_event = presses.on_event
    if midi is not None:
        midi.send_programs()
    frame_tops: list[float] = []
    pacer = threading.Event()  # never set: frontend.py waits on its stop event
    start = time.monotonic()
    deadline = start + args.duration
    cpu_before, own_before = machine_cpu(), own_cpu()
    if scheduler is not None:
        scheduler.start()
    presses.thread.start()
    try:
        last = start
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            frame_tops.append(now)
            if locked is not None:
                drawer.frame(locked.frame(now))
            else:
                assert scheduler is not None
                drawer.frame(scheduler.scene)
            last += 1 / FPS
            wait = last - time.monotonic()
            if wait > 0:
                pacer.wait(wait)
            else:
                last = time.monotonic()
    finally:
        end = time.monotonic()
        cpu_after, own_after = machine_cpu(), own_cpu()
        presses.stop.set()
        presses.thread.join(2)
        if scheduler is not None:
            scheduler.stop()
        if speakers is not None:
            speakers.close()
        if locked is not None:
            locked.stop()
        drawer.close()
    if probe is not None:
        time.sleep(0.05)  # the last notes through JACK's next cycles
        probe.collect()
    return Run(
        ons=list(sink.ons),
        applied=list(presses.applied),
        frame_tops=frame_tops,
        draws=drawer.draws,
        arrivals=probe.arrivals if probe is not None else [],
        scheduler_lateness=list(scheduler.timing.lateness) if scheduler else [],
        scheduler_press_latency=list(scheduler.timing.press_latency) if scheduler else [],
        measure_from=start + args.warmup,
        measure_until=end - 0.1,  # every note before this had a frame after it
        presses=presses.count,
        midi_name=midi.name if midi is not None else None,
        display=args.display,
        notes=notes,
        cpu=cpu_share(cpu_before, cpu_after, own_after - own_before),
    )
