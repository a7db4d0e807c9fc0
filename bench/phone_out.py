#!/usr/bin/env python3
"""What the live phone output (``billboard/phone_out.py``) costs the billboard: the
phone thread's CPU per 20 ms frame, against the mixer's frame alone in the same run.

``.venv/bin/python bench/phone_out.py [--seconds S] [--json FILE]`` plays the busy
night of ``bench/phone_mix.py`` (all eight tracks, a note a 16th each, 120 bpm) with
each of the eight tracks held by a caller: the notes handed to a `PhoneOut` as the
scheduler hands them (through its sink side, each just before its frame), the frames
rendered by `render_due` on a simulated clock, every bundle built and handed over (to
a function that keeps it, as the show hands it to the event loop). On one thread pinned
to one core, the two taking turns for about ``--seconds`` (5) of CPU each; the best
round of each is reported:

- the baseline: `PhoneMixer.frame` alone, the notes fed straight to the mixer (what
  ``bench/phone_mix.py`` measures as "shared + 8 holders' mixes");
- the live output: the same frames through `PhoneOut` (the hand-over deque, the
  holders, the bundle of 9 mixes and 8 names), and what it adds;
- the bundle's size, and so what the link to the relay carries a second;
- what the phone thread does to the speakers' timing: the real scheduler thread and
  engine (the groove bed, 8 callers pressing 50 keys a second between them), for
  ``--show-seconds`` (10) of wall-clock time without a phone output and as long with
  one rendering on its own thread, in three rounds each, taking turns; how late notes
  leave the scheduler (p50, p99, max), each way. The two threads share the
  interpreter's lock and the machine's cores: this is the price of that.

Sounds are prepared before the timing. The exit code is 0 whatever the numbers.

    python bench/phone_out.py [--seconds S] [--show-seconds S] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from bench.phone_mix import NIGHT_S, night
from bench.stats import load, percentile, write_result
from billboard.engine import Digit, Engine, EngineConfig, Join
from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.outputs import NoteSink
from billboard.phone_mix import FRAME, RATE, PhoneMixer, PhoneSounds
from billboard.phone_out import GRACE_S, PhoneOut
from billboard.samples import SampleSet, load_sample_sets
from billboard.scheduler import Scheduler

SOUNDS = Path(__file__).resolve().parent.parent / "sounds"
FRAME_S = FRAME / RATE
ROUNDS = 3  # of each way, for the scheduler's lateness
HOLDERS = {f"c-holder{n}": t.name for n, t in enumerate(DEFAULT_TRACKS)}


def best_us(seconds: float, runs: tuple[Callable[[], int], ...]) -> list[float]:
    """Each of `runs` (each renders a night's frames) in turn, round after round, for
    about `seconds` of CPU each: the best round's CPU µs per frame of each (a busy
    machine slows some rounds; taking turns spreads that over both)."""
    best = [float("inf")] * len(runs)
    spent = 0.0
    while spent < seconds * len(runs):
        for n, run in enumerate(runs):
            start = time.thread_time()
            frames = run()
            took = time.thread_time() - start
            spent += took
            best[n] = min(best[n], took / frames * 1e6)
    return best


class Quiet:
    """The speakers' place in the show, doing nothing: only the timing is measured."""

    name = "speakers"

    def note_on(self, note: NoteOn) -> None:
        pass

    def note_off(self, note: NoteOff) -> None:
        pass

    def panic(self) -> None:
        pass

    def close(self) -> None:
        pass


def show_lateness(seconds: float, phone: bool, sets: Mapping[str, SampleSet]) -> list[float]:
    """Notes' lateness (ms, sorted) leaving a real scheduler for `seconds`, with or
    without a `PhoneOut` rendering on its own thread beside it."""
    engine = Engine(EngineConfig(), start=time.monotonic())
    sinks: list[NoteSink] = [Quiet()]
    out: PhoneOut | None = None
    if phone:
        scheduler_box: list[Scheduler] = []

        def holders() -> dict[str, str]:
            scene = scheduler_box[0].scene
            return {t.caller: t.name for t in scene.tracks if t.caller is not None}

        out = PhoneOut(
            lambda: PhoneMixer(sets, DEFAULT_TRACKS),
            lambda bundle: None,
            holders,
        )
        sinks.append(out)
    scheduler = Scheduler(engine, sinks)
    if out is not None:
        scheduler_box.append(scheduler)
        out.start()
        while out.mixer is None:
            time.sleep(0.05)
    scheduler.start()
    callers = [f"c-bench{n}" for n in range(8)]
    for caller in callers:
        scheduler.submit(Join(caller, "twilio"))
    rng = random.Random(16)
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:  # 50 presses a second between them, Poisson
        time.sleep(rng.expovariate(50.0))
        scheduler.submit(Digit(rng.choice(callers), rng.choice("0123456789*#")))
    scheduler.stop()
    if out is not None:
        out.stop()
    return sorted(1000 * late for late in scheduler.timing.lateness)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--show-seconds", type=float, default=10.0)
    parser.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    args = parser.parse_args()
    load_at_start = load()
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(cores)})
    sets = load_sample_sets(SOUNDS)
    notes = night()
    sounds = PhoneSounds()
    warm = PhoneMixer(sets, DEFAULT_TRACKS, sounds=sounds)
    for note in notes:
        if isinstance(note, NoteOn):
            warm.prepare(note)
    count = round(NIGHT_S / FRAME_S)
    held = set(HOLDERS.values())
    sizes: list[int] = []

    def baseline() -> int:
        mixer = PhoneMixer(sets, DEFAULT_TRACKS, sounds=sounds)
        at = 0
        for n in range(count):
            end = (n + 1) * FRAME_S
            while at < len(notes) and notes[at].time < end:
                note = notes[at]
                (mixer.note_on if isinstance(note, NoteOn) else mixer.note_off)(note)  # type: ignore[arg-type]
                at += 1
            mixer.frame(n * FRAME_S, held)
        return count

    def live() -> int:
        clock = [0.0]
        sent: list[bytes] = []
        out = PhoneOut(
            lambda: PhoneMixer(sets, DEFAULT_TRACKS, sounds=sounds),
            sent.append,
            lambda: HOLDERS,
            clock=lambda: clock[0],
        )
        out.render_due(0.0)  # the mixer made
        out.render_due(0.0)  # the grid found: frame 0 starts at 0
        at = 0
        for n in range(count):
            end = (n + 1) * FRAME_S
            while at < len(notes) and notes[at].time < end:
                note = notes[at]
                (out.note_on if isinstance(note, NoteOn) else out.note_off)(note)  # type: ignore[arg-type]
                at += 1
            clock[0] = end + GRACE_S
            out.render_due(clock[0])
        sizes.append(len(sent[-1]))
        return out.frames

    base_us, live_us = best_us(args.seconds, (baseline, live))
    if hasattr(os, "sched_setaffinity"):  # the show's threads on the machine's cores
        os.sched_setaffinity(0, cores)
    alone: list[float] = []
    beside: list[float] = []
    for _ in range(ROUNDS):  # taking turns: a busy spell of the machine hits both
        alone += show_lateness(args.show_seconds / ROUNDS, False, sets)
        beside += show_lateness(args.show_seconds / ROUNDS, True, sets)
    alone.sort()
    beside.sort()
    budget_us = FRAME_S * 1e6
    size = sizes[-1]
    print(f"phone output, one core, a busy night, {len(HOLDERS)} tracks held")
    print(f"  the mixer's frame alone (baseline): {base_us:7.1f} µs per 20 ms frame")
    print(
        f"  the live output (hand-over, holders, bundle): {live_us:7.1f} µs per frame, "
        f"{100 * live_us / budget_us:.1f} % of a core ({live_us / base_us:.2f}× the baseline)"
    )
    print(f"  a bundle: {size:,} bytes (9 mixes, 8 names) → {size / FRAME_S / 1000:.0f} KB/s")
    for label, late in (("without the phone thread", alone), ("with it beside", beside)):
        p50, p99 = percentile(late, 0.5), percentile(late, 0.99)
        print(
            f"  notes leaving the scheduler {label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
            f"max {late[-1]:.2f} ms ({len(late):,} notes)"
        )
    figures = {
        "baseline_us_per_frame": base_us,
        "live_us_per_frame": live_us,
        "core_share": live_us / budget_us,
        "overhead_ratio": live_us / base_us,
        "bundle_bytes": size,
        "lateness_p99_ms_alone": percentile(alone, 0.99),
        "lateness_p99_ms_with_phone": percentile(beside, 0.99),
        "lateness_max_ms_alone": alone[-1],
        "lateness_max_ms_with_phone": beside[-1],
    }
    if args.json:
        settings = {
            "seconds": args.seconds,
            "show_seconds": args.show_seconds,
            "night_s": NIGHT_S,
            "holders": len(HOLDERS),
        }
        write_result(args.json, "phone_out", load_at_start, settings, figures)


if __name__ == "__main__":
    main()
