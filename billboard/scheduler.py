"""The engine's own thread: notes leave on their grid step, not on the next video frame.

The scheduler owns the engine. Input events arrive through `submit` from any thread
(the relay link, the keyboard, a replay) and are applied in time order; notes are
rendered a little ahead (`LOOKAHEAD_S`) and handed to the outputs (speakers, MIDI,
recording) at their time, whatever the display is doing. The display only reads
`scene`, an immutable snapshot.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from relay.ratelimit import LogOnce

from .engine import Engine, InputEvent, Note, NoteOff, NoteOn, Scene
from .engine.events import Command, EngineUpdate
from .outputs import ClockSink, NoteSink, PreparesNotes, SyncsFollowers

log = logging.getLogger("billboard.scheduler")

LOOKAHEAD_S = 0.05  # notes are rendered this far ahead of their time
SCENE_HZ = 60.0
MIDI_CLOCKS_PER_STEP = 6  # 24 ppqn, 4 steps a beat: a step is MIDI 1.0's "MIDI beat"
SPIN_S = 0.003  # wake this early for a note, then hold on until it is due


@dataclass
class Timing:
    """How late notes leave, for the HUD and the benchmark (seconds, bounded)."""

    lateness: deque[float]
    press_latency: deque[float]

    @classmethod
    def empty(cls, keep: int = 20_000) -> Timing:
        return cls(deque(maxlen=keep), deque(maxlen=keep))


class Scheduler:
    """Runs the engine on its own thread; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        sinks: Sequence[NoteSink],
        *,
        clock: Callable[[], float] = time.monotonic,
        midi_clock: ClockSink | None = None,
        on_updates: Callable[[list[EngineUpdate]], None] | None = None,
        on_scene: Callable[[Scene], None] | None = None,
        on_event: Callable[[InputEvent, float], None] | None = None,
    ) -> None:
        self.engine = engine
        self.sinks = list(sinks)
        self.clock = clock
        self.midi_clock = midi_clock
        self.on_updates = on_updates
        self.on_scene = on_scene
        self.on_event = on_event
        self.timing = Timing.empty()
        self.scene: Scene = engine.scene(clock())
        self._cond = threading.Condition()
        # (apply at, order, event, its own time or None for "now", when submitted)
        self._inbox: list[tuple[float, int, InputEvent, float | None, float]] = []
        self._order = itertools.count()
        self._notes: list[tuple[float, int, Note]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="dialjam-scheduler", daemon=True)
        self._failed = LogOnce()  # each failing call is logged once
        self._latency_from: float | None = None
        self._prepares = [s.prepare for s in sinks if isinstance(s, PreparesNotes)]
        self._syncs = midi_clock if isinstance(midi_clock, SyncsFollowers) else None
        self._sync_asked = False  # by the operator (``midi_sync``), on the engine thread

    # -- from any thread --

    def start(self) -> None:
        self._thread.start()

    def submit(self, event: InputEvent, at: float | None = None) -> None:
        """Apply `event` at time `at` (a replay) or as soon as the engine sees it."""
        with self._cond:
            stamp = at if at is not None else -1.0
            heapq.heappush(self._inbox, (stamp, next(self._order), event, at, self.clock()))
            self._cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """End the show: every sounding note off, every output closed."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the engine thread --

    def _run(self) -> None:
        engine = self.engine
        next_scene = 0.0
        next_tick = engine.grid.time_of(engine.rendered + 1)
        ticks = 0  # sent since Start: followers count the song's position in these
        if self.midi_clock is not None:
            self._safe(self.midi_clock.clock_start)
        try:
            while True:
                now = self.clock()
                with self._cond:
                    if self._stop:
                        break
                    ready = []
                    while self._inbox and self._inbox[0][0] <= now:
                        ready.append(heapq.heappop(self._inbox))
                for _, _, event, at, received in ready:
                    self._apply(event, now if at is None else at, received)
                self._queue(engine.advance(now, LOOKAHEAD_S))
                self._dispatch(now)
                updates = engine.take_updates()
                if updates and self.on_updates is not None:
                    self.on_updates(updates)
                if self.midi_clock is not None:
                    while next_tick <= now:
                        if ticks % MIDI_CLOCKS_PER_STEP == 0:
                            self._sync_followers(ticks // MIDI_CLOCKS_PER_STEP)
                        self._safe(self.midi_clock.clock_tick)
                        ticks += 1
                        next_tick += engine.grid.step_duration / MIDI_CLOCKS_PER_STEP
                if now >= next_scene:
                    self.scene = engine.scene(now)
                    if self.on_scene is not None:
                        self.on_scene(self.scene)
                    next_scene = now + 1 / SCENE_HZ
                wake = min(next_scene, now + 0.01)
                if self._notes:
                    wake = min(wake, self._notes[0][0])
                if self.midi_clock is not None:
                    wake = min(wake, next_tick)
                with self._cond:
                    if self._inbox and self._inbox[0][0] < wake:
                        wake = self._inbox[0][0]
                    for_note = bool(self._notes) and wake >= self._notes[0][0]
                    delay = wake - self.clock() - (SPIN_S if for_note else 0.0)
                    if delay > 0 and not self._stop:
                        self._cond.wait(delay)
                if for_note:
                    self._spin_until(self._notes[0][0])
        except Exception:  # our bug: log it, then silence everything rather than hang notes
            log.exception("the scheduler failed; silencing the outputs")
        finally:
            self._shutdown()

    def _sync_followers(self, sixteenths: int) -> None:
        """On a 16th's first clock: a follower that joined since (or every follower,
        when the operator asked) is set up and told the song's position, so it plays
        on from the very clock that follows (MIDI 1.0: Song Position, then Continue)."""
        asked, self._sync_asked = self._sync_asked, False
        if self._syncs is None:
            return
        try:
            joined = self._syncs.sync_requested()
        except Exception:
            joined = False
            if self._failed.allow("sync_requested"):
                log.exception("the MIDI clock failed to say whether a follower joined")
        if asked or joined:
            self._safe(self._syncs.clock_sync, sixteenths)

    def _spin_until(self, due: float) -> None:
        """Hold the interpreter until a note is due: a frame drawn by the main thread
        holds the GIL for ~2 ms, and a note whose wait ended mid-draw would leave late.
        Bounded by SPIN_S of real time; a new event ends it at once."""
        limit = time.monotonic() + SPIN_S
        while self.clock() < due and time.monotonic() < limit:
            if self._inbox or self._stop:
                break

    def _apply(self, event: InputEvent, at: float, received: float) -> None:
        engine = self.engine
        # Render up to the event's own time first, so the notes depend only on the
        # events and their times (a replay gives the same notes).
        self._queue(engine.advance(at, LOOKAHEAD_S))
        if self.on_event is not None:
            self.on_event(event, at)
        notes = engine.handle(event, at)
        if isinstance(event, Command) and event.name == "panic":
            self.panic()  # then the notes the tracks held end, queued below, at once
        if isinstance(event, Command) and event.name == "midi_sync":
            self._sync_asked = True  # on the next 16th, where a position can be told
        if any(isinstance(n, NoteOn) and n.time <= at + 1e-9 for n in notes):
            # A press played at once: from its arrival here to its note leaving. The
            # note is dispatched in this same loop turn, right after this.
            self._latency_from = min(received, at)
        self._queue(notes)

    def _queue(self, notes: list[Note]) -> None:
        for note in notes:
            heapq.heappush(self._notes, (note.time, next(self._order), note))
            if isinstance(note, NoteOn):
                # Outputs that need work before a note (the mixer resamples a pitch the
                # first time) do it now, ahead of time, not when the note is due.
                for prepare in self._prepares:
                    self._safe(prepare, note)

    def _dispatch(self, now: float) -> None:
        notes = self._notes
        while notes and notes[0][0] <= now:
            when, _, note = heapq.heappop(notes)
            if isinstance(note, NoteOn):
                sent = self.clock()
                self.timing.lateness.append(sent - when)
                if self._latency_from is not None:
                    self.timing.press_latency.append(sent - self._latency_from)
                    self._latency_from = None
                for sink in self.sinks:
                    self._safe(sink.note_on, note)
            else:
                for sink in self.sinks:
                    self._safe(sink.note_off, note)

    def panic(self) -> None:
        """All notes off now, and nothing already queued plays (engine thread)."""
        pending = [n for _, _, n in self._notes if isinstance(n, NoteOff)]
        self._notes.clear()
        for note in pending:
            for sink in self.sinks:
                self._safe(sink.note_off, note)
        for sink in self.sinks:
            self._safe(sink.panic)

    def _shutdown(self) -> None:
        # Every note that was started gets its note-off: no stuck notes.
        offs = [n for _, _, n in self._notes if isinstance(n, NoteOff)]
        offs += [n for n in self.engine.held_offs() if isinstance(n, NoteOff)]
        self._notes.clear()
        for note in offs:
            for sink in self.sinks:
                self._safe(sink.note_off, note)
        if self.midi_clock is not None:
            self._safe(self.midi_clock.clock_stop)
        for sink in self.sinks:
            self._safe(sink.panic)
            self._safe(sink.close)

    def _safe(self, fn: Callable[..., None], *args: object) -> None:
        """An output failing must never stop the show; each failing call is logged
        (with its traceback: it is a bug in the adapter) once."""
        try:
            fn(*args)
        except Exception:
            where = getattr(fn, "__qualname__", repr(fn))
            if self._failed.allow(where):
                log.exception("an output failed in %s; the show goes on", where)
