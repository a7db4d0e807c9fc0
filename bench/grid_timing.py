#!/usr/bin/env python3
"""Notes on the grid: how close to its step time a note leaves the billboard.

``python bench/grid_timing.py`` runs the real engine thread (`billboard.scheduler.
Scheduler` driving a real `Engine`) for ``--duration`` seconds of wall-clock time under
the load of a live show, and measures when each note-on is handed to the MIDI port:

- the main thread draws the live scene (`Scheduler.scene`) with `Display.draw` at
  1920×1080 on SDL's dummy video driver, paced to 60 fps as `billboard/frontend.py` does;
- a "relay" thread submits presses to the scheduler, as the relay link does: 12 callers
  join (8 take the tracks, 4 wait in line), then the 8 players press digits at
  ``--rate`` events a second (100; Poisson arrivals), so the 8 loops fill and every
  step carries dozens of notes;
- the MIDI output is a real `MidiOut` on a JACK server started here (``jackd
  --no-realtime -d dummy -r 48000 -p 256``), with the MIDI clock on, as in the show.
  It is wrapped by a thin sink that records ``time.monotonic()`` just before
  `MidiOut.note_on` is called, and the note's own time. A JACK MIDI input in a
  process of its own (rtmidi's own callback, which records ``time.monotonic()`` on
  arrival: the same clock in every process) listens to the port.

Figures (milliseconds, p50/p99/max, with counts):

- ``grid → MidiOut.note_on`` — for notes scheduled ahead of their step (loop notes and
  presses quantised to the next step): the moment `note_on` is called on the MIDI
  port minus the step time. Target: p99 ≤ 1 ms (PASS/MISS is printed).
- ``grid → JACK input`` — what a synth behind JACK sees: arrival minus step time (it
  includes JACK's 5.3 ms process cycle, so it has no 1 ms target).
- ``press → MidiOut.note_on`` — presses that play at once (within the engine's grace
  after a step): the moment the relay thread submitted the press to the first
  `note_on` of its note; alongside, what `Scheduler.timing.press_latency` recorded.
- ``frame-locked baseline`` — the same notes and presses, in the same run, sent when the
  60 fps display loop next woke up after their time: what a billboard without a
  scheduler thread (notes sent from the draw loop) would do. The ratio of the p99s
  says why the scheduler thread exists.

The grid figure is split by whether `Display.draw` ran between a note's step time and
its sending: a draw in the same process holds the GIL, so it can hold a note back.
``--display child`` draws the same scenes in a process of its own (sent over a pipe at
60 fps) and ``--display none`` not at all, to compare. A step's notes leave together,
so the p99 over notes is made by a few late steps: their count is printed too, and so
is how busy the machine was (other users' processes show in the tail first).

The first ``--warmup`` seconds (display caches being built, JACK connecting) are left
out. Without jackd (or when it cannot start) the run goes on with a sink that only
timestamps, and says so. The exit code is 0 whatever the numbers (it is a measurement).

    .venv/bin/python bench/grid_timing.py [--duration S] [--rate N] [--warmup S]
        [--display {thread,child,none}] [--switch-interval MS] [--no-jack]
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import math
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

# Software rendering without a screen; set before pygame is imported.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import pygame
import rtmidi

from billboard.display import Banner, Display
from billboard.engine import (
    Digit,
    Engine,
    EngineConfig,
    InputEvent,
    Join,
    NoteOff,
    NoteOn,
    Scene,
)
from billboard.midi_out import MidiOut
from billboard.scheduler import Scheduler

TARGET_P99_MS = 1.0
FPS = 60
SIZE = (1920, 1080)
CALLERS = 12  # 8 take the tracks, 4 wait in line
PLAYERS = 8
DIGITS = "0123456789*#"
PROBE_CLIENT = "dialjam-bench-probe"
PROBE_PORT = "grid in"
BANNER = Banner("+1 555 010 0199", "https://dialjam.example.org/k/dialjam")
JACK_PERIOD_FRAMES = 256
JACK_RATE = 48_000


# -- a JACK server of our own ---------------------------------------------------------


@dataclass
class Jack:
    """A jackd with the dummy driver on a server name of its own, made this process's
    default JACK server while it runs (as tests/services.py does, without pytest)."""

    name: str = field(default_factory=lambda: f"djbench{os.getpid()}x{uuid.uuid4().hex[:6]}")
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, timeout: float = 10.0) -> str | None:
        """Start jackd; None once a JACK MIDI client can join it, else why not."""
        jackd = shutil.which("jackd")
        if jackd is None:
            return "jackd not found (apt-get install jackd2)"
        self.log_path = Path(tempfile.gettempdir()) / f"jackd-{self.name}.log"
        env = {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_AUDIO_RESERVATION": "1"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    jackd,
                    "--no-realtime",
                    "-n",
                    self.name,
                    "-d",
                    "dummy",
                    "-r",
                    str(JACK_RATE),
                    "-p",
                    str(JACK_PERIOD_FRAMES),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        deadline = time.monotonic() + timeout
        with quiet_stderr():  # libjack says "Cannot connect to server" until it is up
            while True:
                try:
                    rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="dialjam-bench-ready").delete()
                    return None
                except rtmidi.RtMidiError as err:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        log_text = self.log_path.read_text(errors="replace").strip()
                        return f"jackd did not start ({err}); its log: {log_text[-300:]}"
                    time.sleep(0.02)

    def stop(self) -> None:
        """Stop it (SIGTERM, SIGKILL if it lingers) and clear what it left in /dev/shm."""
        os.environ.pop("JACK_DEFAULT_SERVER", None)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for leftover in Path("/dev/shm").glob(f"*_{self.name}_*"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.unlink()


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 (where C libraries write) to /dev/null for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def jack_turn(timeout: float) -> Iterator[bool]:
    """Take the lock the test suite's JACK servers take turns with (jack2 servers of one
    user share state in /dev/shm); yields False when it stays busy for `timeout`."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield True
        return
    directory = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    with open(directory / f"dialjam-tests-jackd-{os.getuid()}.lock", "a+b") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.05)
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class Probe:
    """A JACK MIDI input in a process of its own (rtmidi's own callback) that stamps each
    message with ``time.monotonic()`` on arrival: CLOCK_MONOTONIC is the same clock in
    every process. In our own process its callback, which runs on JACK's process thread,
    would wait for the GIL behind the display and the scheduler: JACK's cycle then
    overruns (we saw messages repeated and lost) and it would steal the GIL from the
    scheduler being measured."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, tuple[int, ...]]] = []
        self._child = subprocess.Popen(
            [sys.executable, __file__, "--probe-child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._child.stdout is not None
        ready = self._child.stdout.readline().strip()
        if ready != "ready":
            self._child.kill()
            raise OSError(f"the JACK MIDI probe did not start ({ready or 'no answer'})")

    def collect(self) -> None:
        """Stop listening and read what was heard."""
        if self._child.poll() is not None:
            return
        out, _ = self._child.communicate("stop\n", timeout=10)
        for line in out.splitlines():
            stamp, *data = line.split()
            self.arrivals.append((float(stamp), tuple(int(b) for b in data)))

    def close(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
            self._child.wait(5)


def probe_child() -> int:
    """The probe's process: listen on PROBE_PORT until a line (or EOF) on stdin, then
    print one line per message: its arrival time and its bytes."""
    heard: list[tuple[float, list[int]]] = []

    def on_message(event: tuple[list[int], float], data: object = None) -> None:
        heard.append((time.monotonic(), event[0]))

    midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=PROBE_CLIENT)
    midi_in.set_callback(on_message)
    midi_in.open_virtual_port(PROBE_PORT)
    print("ready", flush=True)
    sys.stdin.readline()
    midi_in.cancel_callback()
    midi_in.close_port()
    midi_in.delete()
    sys.stdout.write("".join(f"{t:.9f} {' '.join(map(str, m))}\n" for t, m in heard))
    return 0


# -- what the scheduler's outputs see ---------------------------------------------------


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


class Presses:
    """The relay thread: joins, then digits at `rate` a second from the 8 players."""

    def __init__(self, scheduler: Scheduler, rate: float, seed: int = 7) -> None:
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


# -- figures ----------------------------------------------------------------------------


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


@dataclass
class Figure:
    name: str
    seconds: list[float]
    note: str = ""

    def p99_ms(self) -> float:
        return 1000 * percentile(sorted(self.seconds), 0.99) if self.seconds else math.nan

    def row(self) -> str:
        if not self.seconds:
            return f"{self.name:<44}{0:>7}{'—':>9}{'—':>9}{'—':>9}  {self.note}"
        ms = sorted(1000 * s for s in self.seconds)
        return (
            f"{self.name:<44}{len(ms):>7}{percentile(ms, 0.5):>9.3f}{percentile(ms, 0.99):>9.3f}"
            f"{ms[-1]:>9.3f}  {self.note}"
        ).rstrip()


def next_frame_after(frame_tops: Sequence[float], t: float) -> float | None:
    """When the display loop next woke up at or after `t` (None: it had stopped)."""
    i = bisect.bisect_left(frame_tops, t)
    return frame_tops[i] if i < len(frame_tops) else None


def match_arrivals(
    sent: Sequence[tuple[float, NoteOn]], arrivals: Sequence[tuple[float, tuple[int, ...]]]
) -> list[tuple[float, float, NoteOn]]:
    """Pair each note-on the probe heard with the note-on sent (JACK keeps the order;
    a note-on cannot arrive before it was sent, nor a second after):
    (arrived at, handed to the port at, the note)."""
    pairs: list[tuple[float, float, NoteOn]] = []
    j = 0
    for arrived, msg in arrivals:
        if len(msg) != 3 or msg[0] & 0xF0 != 0x90 or msg[2] == 0:
            continue
        while j < len(sent) and sent[j][0] < arrived - 1.0:
            j += 1  # never heard
        for k in range(j, len(sent)):
            called, note = sent[k]
            if called > arrived:
                break
            if msg == (0x90 | note.channel, note.note, note.velocity):
                pairs.append((arrived, called, note))
                j = k + 1
                break
    return pairs


# -- the run ----------------------------------------------------------------------------


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


def run_show(args: argparse.Namespace, midi: MidiOut | None, probe: Probe | None) -> Run:
    sink = TimedSink(midi)
    config = EngineConfig(attract_after_s=1e9, idle_s=1e9, turn_s=1e9)
    drawer = Drawer(args.display)
    engine = Engine(config, start=time.monotonic())
    scheduler = Scheduler(engine, [sink], midi_clock=midi)  # on_event is set below
    presses = Presses(scheduler, args.rate)
    scheduler.on_event = presses.on_event
    if midi is not None:
        midi.send_programs()
    frame_tops: list[float] = []
    pacer = threading.Event()  # never set: frontend.py waits on its stop event
    start = time.monotonic()
    deadline = start + args.duration
    cpu_before, own_before = machine_cpu(), own_cpu()
    scheduler.start()
    presses.thread.start()
    try:
        last = start
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            frame_tops.append(now)
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
        scheduler.stop()
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
        scheduler_lateness=list(scheduler.timing.lateness),
        scheduler_press_latency=list(scheduler.timing.press_latency),
        measure_from=start + args.warmup,
        measure_until=end - 0.1,  # every note before this had a frame after it
        presses=presses.count,
        midi_name=midi.name if midi is not None else None,
        display=args.display,
        cpu=cpu_share(cpu_before, cpu_after, own_after - own_before),
    )


def overlaps(
    intervals: Sequence[tuple[float, float]], starts: Sequence[float], lo: float, hi: float
) -> bool:
    """Whether one of `intervals` (sorted, disjoint; `starts` their beginnings) overlaps
    [lo, hi]."""
    i = bisect.bisect_right(starts, hi) - 1
    return i >= 0 and intervals[i][1] > lo


@dataclass
class Figures:
    grid: list[Figure]
    press: list[Figure]
    context: list[Figure]
    target: Figure
    baseline: Figure
    steps: int
    late_steps: int
    heard: int
    matched: int


def figures(run: Run) -> Figures:
    submitted_at = dict(run.applied)  # applied at → submitted at
    lo, hi = run.measure_from, run.measure_until
    grid: list[tuple[float, NoteOn]] = []  # (handed to the port at, the note)
    press: list[float] = []
    naive_press: list[float] = []
    seen: set[float] = set()
    for called, _, note in run.ons:
        submitted = submitted_at.get(note.time)
        if submitted is None:  # on the grid, rendered ahead of its step
            if lo <= note.time <= hi:
                grid.append((called, note))
        elif note.time not in seen and lo <= note.time <= hi:  # a press played at once
            seen.add(note.time)  # its first note-on (a chord has several)
            press.append(called - submitted)
            frame = next_frame_after(run.frame_tops, submitted)
            if frame is not None:
                naive_press.append(frame - submitted)
    late = [called - note.time for called, note in grid]
    naive_grid = []
    for _, note in grid:
        frame = next_frame_after(run.frame_tops, note.time)
        if frame is not None:
            naive_grid.append(frame - note.time)
    draw_starts = [began for began, _ in run.draws]
    in_draw = [overlaps(run.draws, draw_starts, n.time, called) for called, n in grid]
    late_in = [s for s, d in zip(late, in_draw, strict=True) if d]
    late_out = [s for s, d in zip(late, in_draw, strict=True) if not d]
    worst: dict[float, float] = {}
    for (_, note), seconds in zip(grid, late, strict=True):
        worst[note.time] = max(worst.get(note.time, 0.0), seconds)
    sent = [(called, note) for called, _, note in run.ons]
    pairs = match_arrivals(sent, run.arrivals) if run.arrivals else []
    measured = {id(note) for _, note in grid}
    jack = [(arrived, called, note) for arrived, called, note in pairs if id(note) in measured]
    target = Figure("grid → MidiOut.note_on (scheduler)", late, "the target")
    baseline = Figure("grid → frame-locked baseline", naive_grid, "next 60 fps frame")
    grid_figs = [
        target,
        Figure(
            "  a Display.draw ran between step and send",
            late_in,
            "same process: the GIL" if run.display == "thread" else "",
        ),
        Figure("  no draw between step and send", late_out),
        Figure("grid → JACK input arrival", [a - n.time for a, _, n in jack], "what a synth sees"),
        Figure("  of which MidiOut.note_on → JACK input", [a - c for a, c, _ in jack]),
        baseline,
    ]
    press_figs = [
        Figure("press → MidiOut.note_on (scheduler)", press, "submitted → first note-on"),
        Figure(
            "Scheduler.timing.press_latency",
            run.scheduler_press_latency,
            "as the HUD reads it (whole run)",
        ),
        Figure("press → frame-locked baseline", naive_press, "next 60 fps frame"),
    ]
    context = [
        Figure("Scheduler.timing.lateness", run.scheduler_lateness, "all note-ons, whole run"),
        Figure("MidiOut.note_on call duration", [r - c for c, r, _ in run.ons]),
        Figure(
            f"Display.draw {SIZE[0]}×{SIZE[1]}",
            [end - began for began, end in run.draws if began >= lo],
            "after the warm-up",
        ),
    ]
    heard = sum(1 for _, m in run.arrivals if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2])
    return Figures(
        grid=grid_figs,
        press=press_figs,
        context=context,
        target=target,
        baseline=baseline,
        steps=len(worst),
        late_steps=sum(1 for s in worst.values() if s > TARGET_P99_MS / 1000),
        heard=heard,
        matched=len(jack),
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=18.0, help="seconds of show (18)")
    p.add_argument("--rate", type=float, default=100.0, help="presses a second (100)")
    p.add_argument("--warmup", type=float, default=1.5, help="seconds left out (1.5)")
    p.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval in ms for this run (default: Python's, 5 ms)",
    )
    p.add_argument("--no-jack", action="store_true", help="a timestamping sink, no JACK")
    p.add_argument(
        "--display",
        choices=("thread", "child", "none"),
        default="thread",
        help="draw in the main thread as frontend.py does (thread, the default), in a "
        "process of its own (child), or not at all (none)",
    )
    p.add_argument("--probe-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.duration <= args.warmup + 1:
        p.error("--duration must be at least --warmup + 1 s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.probe_child:
        return probe_child()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval / 1000)
    jack_note = "not used (--no-jack)"
    with contextlib.ExitStack() as stack:
        midi: MidiOut | None = None
        probe: Probe | None = None
        if not args.no_jack:
            if not stack.enter_context(jack_turn(timeout=30.0)):
                jack_note = "NOT RUNNING: another run kept its JACK server for 30 s"
            else:
                jack = Jack()
                stack.callback(jack.stop)
                problem = jack.start()
                if problem is not None:
                    jack_note = f"NOT RUNNING: {problem}"
                else:
                    probe = Probe()
                    stack.callback(probe.close)
                    midi = MidiOut.open(PROBE_PORT, api="jack")  # MidiOut closes in stop()
                    time.sleep(0.05)  # a few JACK cycles for the connection to carry data
                    period_ms = 1000 * JACK_PERIOD_FRAMES / JACK_RATE
                    jack_note = (
                        f"jackd --no-realtime -d dummy -r {JACK_RATE} -p {JACK_PERIOD_FRAMES} "
                        f"({period_ms:.1f} ms cycle), MIDI out → {midi.name}"
                    )
        run = run_show(args, midi, probe)
    report(args, run, jack_note)
    return 0


def report(args: argparse.Namespace, run: Run, jack_note: str) -> None:
    figs = figures(run)
    frames = len(run.frame_tops)
    fps = (frames - 1) / (run.frame_tops[-1] - run.frame_tops[0]) if frames > 1 else 0.0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    where = {
        "thread": "in the main thread (as frontend.py)",
        "child": "in a process of its own",
        "none": "not drawn (--display none)",
    }[args.display]
    print(
        f"Notes on the grid: real Engine + Scheduler, {args.duration:g} s "
        f"({args.warmup:g} s warm-up left out); Display.draw {SIZE[0]}×{SIZE[1]} on SDL "
        f"{os.environ['SDL_VIDEODRIVER']}, {fps:.1f} fps, {where}; {PLAYERS} busy tracks + "
        f"{CALLERS - PLAYERS} waiting; {run.presses} events submitted from a relay thread "
        f"(~{args.rate:g}/s)"
    )
    print(
        f"{os.cpu_count()} CPU(s), load average {load:.2f}, Python "
        f"{sys.version.split()[0]}, switch interval {1000 * sys.getswitchinterval():g} ms, "
        f"pygame-ce {pygame.version.ver}"
    )
    print(f"JACK: {jack_note}")
    print(run.cpu)
    header = f"{'figure (ms)':<44}{'count':>7}{'p50':>9}{'p99':>9}{'max':>9}"
    for title, rows in (
        ("notes scheduled ahead of their step", figs.grid),
        ("presses played at once", figs.press),
        ("context", figs.context),
    ):
        print(f"-- {title}")
        print(header)
        for fig in rows:
            print(fig.row())
    if run.midi_name is not None:
        print(
            f"JACK input heard {figs.heard} of {len(run.ons)} note-ons sent "
            f"({figs.matched} of {len(figs.target.seconds)} measured grid notes matched)"
        )
    print(
        f"steps with a note-on > {TARGET_P99_MS:g} ms late: {figs.late_steps} of {figs.steps} "
        f"(a step's notes leave together, so a few late steps make the p99)"
    )
    p99 = figs.target.p99_ms()
    verdict = "PASS" if p99 <= TARGET_P99_MS else "MISS"
    ratio = figs.baseline.p99_ms() / p99 if p99 > 0 else math.inf
    print(
        f"target: grid → MidiOut.note_on p99 ≤ {TARGET_P99_MS:g} ms: {verdict} "
        f"({p99:.3f} ms over {len(figs.target.seconds)} notes); "
        f"the frame-locked baseline's p99 is {ratio:.1f}× that"
    )


if __name__ == "__main__":
    sys.exit(main())
