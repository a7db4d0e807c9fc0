#!/usr/bin/env python3
"""Engine throughput: how many input events a second the pure music engine handles.

``.venv/bin/python bench/engine_speed.py`` feeds a real `billboard.engine.Engine`
(default `EngineConfig`: 8 tracks, 112 BPM, idle and turn limits on) a realistic crowd
in simulated time, on one thread pinned to one core, for ``--seconds`` of wall-clock
time (5), and prints events/s, µs per event and the notes the engine produced.

The crowd: 12 callers at a time (8 hold the tracks, 4 wait in line), events arriving
at ``--sim-rate`` a second of simulated time (100, Poisson), mixed as a show is:
digits dominate (~94 %: ``0``–``9``, ``*``, ``#``, from any of the 12 callers — the
waiting ones' presses make no note), callers hang up and new ones join (~2.5 % each:
the line moves up, loops fade), and the operator sends a command now and then (~1 %:
mute, tempo, key, scale, kick). Each event is applied as the scheduler applies it::

    notes = engine.advance(t, 0.05)     # render up to the event's time (+ lookahead)
    notes += engine.handle(event, t)
    notes += engine.advance(t, 0.05)    # the scheduler's loop, right after
    engine.take_updates()

Events are generated ahead in chunks, outside the timed part; the time per chunk is
what is measured. Target: ≥ 10,000 events/s on one core (PASS/MISS is printed; the
exit code is 0 whatever the numbers, it is a measurement).

A second figure is what a flood of fake callers does to a real one: the cost of a
press on a held track (applied as above, ``--presses`` of them at 100 a second) with
nobody waiting, beside the same after ``--flood`` callers (10,000) tried to join: the
line takes `EngineConfig.line_max` of them (200) and turns the rest away. Also the
cost of each of those joins, of building the scene the screen draws 60 times a
second, and of a waiting caller leaving from the front (everyone behind moves up).
Each is the best of three runs on fresh engines.

    .venv/bin/python bench/engine_speed.py [--seconds S] [--sim-rate N] [--seed N]
                                           [--flood N] [--presses N] [--json FILE]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from bench.stats import load, write_result
from billboard.engine import (
    Command,
    Digit,
    Engine,
    EngineConfig,
    InputEvent,
    Join,
    Leave,
    NoteOn,
)

TARGET_EVENTS_PER_S = 10_000.0
LOOKAHEAD_S = 0.05  # as billboard/scheduler.py
CALLERS = 12
CHUNK = 10_000
DIGITS = "0123456789*#"
P_LEAVE = 0.025  # each leave is followed by a new caller's join
P_COMMAND = 0.01
KEYS = ("C", "D", "Eb", "F", "G", "A")
SCALES = ("major", "minor", "dorian", "pentatonic")


class SimulatedCrowd:
    """Input events for a show of `CALLERS` callers, with their simulated times."""

    def __init__(self, sim_rate: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.sim_rate = sim_rate
        self.t = 0.0
        self.serial = 0
        self.present: list[str] = []
        self.pending_joins = 0
        self.kinds: Counter[str] = Counter()

    def _new_caller(self) -> str:
        self.serial += 1
        caller = f"c-{self.serial:08x}"
        self.present.append(caller)
        return caller

    def opening(self) -> list[tuple[float, InputEvent]]:
        """The 12 callers join at the start."""
        events: list[tuple[float, InputEvent]] = []
        for i in range(CALLERS):
            caller = self._new_caller()
            events.append((0.0, Join(caller, "twilio", f"…{10 + i}")))
            self.kinds["join"] += 1
        return events

    def chunk(self, n: int) -> list[tuple[float, InputEvent]]:
        rng = self.rng
        events: list[tuple[float, InputEvent]] = []
        for _ in range(n):
            self.t += rng.expovariate(self.sim_rate)
            event: InputEvent
            r = rng.random()
            if self.pending_joins:
                self.pending_joins -= 1
                source = rng.choice(("twilio", "ari", "web"))
                event = Join(self._new_caller(), source, f"…{rng.randrange(100):02d}")
                kind = "join"
            elif r < P_LEAVE:
                caller = self.present.pop(rng.randrange(len(self.present)))
                event = Leave(caller, rng.choice(("hangup", "timeout")))
                self.pending_joins += 1
                kind = "leave"
            elif r < P_LEAVE + P_COMMAND:
                event = self._command()
                kind = "command"
            else:
                caller = self.present[rng.randrange(len(self.present))]
                event = Digit(caller, rng.choice(DIGITS), "twilio")
                kind = "digit"
            self.kinds[kind] += 1
            events.append((self.t, event))
        return events

    def _command(self) -> Command:
        rng = self.rng
        which = rng.random()
        if which < 0.4:
            caller = rng.choice(self.present)
            return Command("mute", {"caller": caller, "on": rng.random() < 0.5})
        if which < 0.6:
            return Command("tempo", {"bpm": rng.randrange(90, 131)})
        if which < 0.75:
            return Command("key", {"key": rng.choice(KEYS)})
        if which < 0.9:
            return Command("scale", {"name": rng.choice(SCALES)})
        caller = self.present.pop(rng.randrange(len(self.present)))
        self.pending_joins += 1  # a kicked caller's place goes to someone new
        return Command("kick", {"caller": caller})


@dataclass
class Totals:
    events: int = 0
    seconds: float = 0.0
    note_ons: int = 0
    note_offs: int = 0


def run_chunk(engine: Engine, events: Sequence[tuple[float, InputEvent]], totals: Totals) -> float:
    """Apply `events` as the scheduler does; returns the wall-clock seconds taken."""
    advance, handle, take = engine.advance, engine.handle, engine.take_updates
    ons = offs = 0
    start = time.perf_counter()
    for t, event in events:
        notes = advance(t, LOOKAHEAD_S)
        notes += handle(event, t)
        notes += advance(t, LOOKAHEAD_S)
        take()
        for note in notes:
            if isinstance(note, NoteOn):
                ons += 1
            else:
                offs += 1
    elapsed = time.perf_counter() - start
    totals.events += len(events)
    totals.seconds += elapsed
    totals.note_ons += ons
    totals.note_offs += offs
    return elapsed


@dataclass
class FloodFigure:
    """Microseconds per operation on one engine, with `waiting` callers in line."""

    press_us: float
    scene_us: float
    join_us: float
    leave_us: float  # a waiting caller leaving from the front; nan when nobody waits
    told: float  # callers told their new place, per such leave
    waiting: int


def flood_figure(flood: int, presses: int) -> FloodFigure:
    """Eight callers hold the tracks; `flood` more try to join within 10 s (each
    turned away once the line is full); then the eight press keys for `presses`/100 s,
    well inside the idle and turn limits, so every press lands on a held track."""
    engine = Engine(EngineConfig(), start=0.0)
    players = [f"c-player{n}" for n in range(len(engine.tracks))]
    for caller in players:
        engine.handle(Join(caller, "twilio", "…12"), 0.0)
    joins = [(10.0 * n / max(flood, 1), Join(f"c-{n:08x}", "web")) for n in range(flood)]
    start = time.perf_counter()
    for t, event in joins:
        engine.handle(event, t)
    join_s = time.perf_counter() - start
    engine.take_updates()
    t0 = 10.0
    script = [
        (t0 + n / 100, Digit(players[n % len(players)], DIGITS[n % len(DIGITS)], "twilio"))
        for n in range(presses)
    ]
    advance, handle, take = engine.advance, engine.handle, engine.take_updates
    start = time.perf_counter()
    for t, digit in script:
        advance(t, LOOKAHEAD_S)
        handle(digit, t)
        advance(t, LOOKAHEAD_S)
        take()
    press_s = time.perf_counter() - start
    end = script[-1][0] if script else t0
    start = time.perf_counter()
    for _ in range(1000):
        engine.scene(end)
    scene_s = time.perf_counter() - start
    waiting = len(engine.line)
    leaving = [Leave(caller) for caller in engine.line.first(100)]
    told = 0
    start = time.perf_counter()
    for leave in leaving:
        handle(leave, end)
        told += len(take())
    leave_s = time.perf_counter() - start
    return FloodFigure(
        press_us=1e6 * press_s / max(presses, 1),
        scene_us=1e6 * scene_s / 1000,
        join_us=1e6 * join_s / max(flood, 1),
        leave_us=1e6 * leave_s / len(leaving) if leaving else math.nan,
        told=told / len(leaving) if leaving else math.nan,
        waiting=waiting,
    )


def best_flood_figure(flood: int, presses: int, runs: int = 3) -> FloodFigure:
    figures = [flood_figure(flood, presses) for _ in range(runs)]
    return FloodFigure(
        press_us=min(f.press_us for f in figures),
        scene_us=min(f.scene_us for f in figures),
        join_us=min(f.join_us for f in figures),
        leave_us=min(f.leave_us for f in figures),
        told=figures[0].told,
        waiting=figures[0].waiting,
    )


def pin_to_one_core() -> str:
    """Run on one CPU (the one we are on), where the OS lets us choose."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=5.0, help="wall-clock time (5)")
    p.add_argument("--sim-rate", type=float, default=100.0, help="events a simulated second (100)")
    p.add_argument("--seed", type=int, default=2010, help="the crowd's random seed (2010)")
    p.add_argument("--flood", type=int, default=10_000, help="fake callers who join (10000)")
    p.add_argument("--presses", type=int, default=10_000, help="real presses timed (10000)")
    p.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_at_start = load()
    pinned = pin_to_one_core()
    crowd = SimulatedCrowd(args.sim_rate, args.seed)
    engine = Engine(EngineConfig(), start=0.0)
    totals = Totals()
    rates: list[float] = []
    run_chunk(engine, crowd.opening(), totals)
    deadline = time.perf_counter() + args.seconds
    while time.perf_counter() < deadline:
        events = crowd.chunk(CHUNK)  # made outside the timed part
        rates.append(len(events) / run_chunk(engine, events, totals))
    per_s = totals.events / totals.seconds
    seated = sum(1 for track in engine.tracks if track.caller)
    mix = ", ".join(
        f"{kind} {100 * crowd.kinds[kind] / totals.events:.1f} %"
        for kind in ("digit", "join", "leave", "command")
    )
    print(
        f"Engine throughput: default EngineConfig ({len(engine.tracks)} tracks), "
        f"{CALLERS} callers, {args.sim_rate:g} events per simulated second, "
        f"advance(t, {LOOKAHEAD_S}) around each event; one thread, {pinned}; "
        f"Python {sys.version.split()[0]}"
    )
    print(f"mix: {mix}")
    print(
        f"events {totals.events:,} in {totals.seconds:.2f} s of engine time "
        f"({crowd.t:,.0f} s simulated; at the end {seated} callers on tracks, "
        f"{len(engine.line)} waiting)"
    )
    print(
        f"throughput: {per_s:,.0f} events/s, {1e6 / per_s:.1f} µs/event "
        f"(per {CHUNK:,}-event chunk: min {min(rates):,.0f}, median "
        f"{statistics.median(rates):,.0f}, max {max(rates):,.0f} events/s)"
    )
    print(
        f"notes produced: {totals.note_ons:,} note-ons + {totals.note_offs:,} note-offs "
        f"({totals.note_ons / totals.events:.2f} note-ons per event, "
        f"{totals.note_ons / max(crowd.t, 1e-9):,.0f} per simulated second)"
    )
    verdict = "PASS" if per_s >= TARGET_EVENTS_PER_S else "MISS"
    print(
        f"target: ≥ {TARGET_EVENTS_PER_S:,.0f} events/s on one core: {verdict} "
        f"({per_s / TARGET_EVENTS_PER_S:.1f}× the target)"
    )
    calm = best_flood_figure(0, args.presses)
    flooded = best_flood_figure(args.flood, args.presses)
    print(
        f"a real press: {calm.press_us:.1f} µs with nobody waiting, "
        f"{flooded.press_us:.1f} µs after {args.flood:,} callers tried to join "
        f"({flooded.waiting} waiting, the rest turned away; "
        f"{flooded.press_us / calm.press_us:.2f}×)"
    )
    print(
        f"each of those joins: {flooded.join_us:.1f} µs; the scene: "
        f"{calm.scene_us:.1f} µs with nobody waiting, {flooded.scene_us:.1f} µs flooded; "
        f"a departure from the front of the flooded line: {flooded.leave_us:.1f} µs "
        f"({flooded.told:.0f} callers told their new place)"
    )
    if args.json:
        figures = {
            "events_per_s": per_s,
            "us_per_event": 1e6 / per_s,
            "target_events_per_s": TARGET_EVENTS_PER_S,
            "tracks": len(engine.tracks),
            "callers": CALLERS,
            "mix_pct": {
                kind: 100 * crowd.kinds[kind] / totals.events
                for kind in ("digit", "join", "leave", "command")
            },
            "note_ons": totals.note_ons,
            "calm": asdict(calm),
            "flooded": asdict(flooded),
            "flood": args.flood,
        }
        settings = {
            k: getattr(args, k) for k in ("seconds", "sim_rate", "seed", "flood", "presses")
        }
        write_result(args.json, "engine_speed", load_at_start, settings, figures, pinning=pinned)
    return 0


if __name__ == "__main__":
    sys.exit(main())
