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
- ``frame-locked baseline`` — a second show, measured the same way (same presses,
  same display, a sink that only timestamps), driven by a billboard without a
  scheduler thread: its draw loop applies the presses that came in and sends the notes
  that fell due, once a frame (bench/grid_show.py, `FrameLocked`). The ratio of the
  p99s says why the scheduler thread exists. Beside it, the first show's notes as
  they would have left at the next frame top (``next frame (computed)``), the
  estimate the measured figure checks.

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
        [--no-baseline] [--json FILE]

The bench/grid_*.py modules hold the parts: grid_jack.py (a JACK server of our own and
the probe), grid_show.py (the show and the baseline's loop), grid_figures.py.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Software rendering without a screen; set before pygame is imported.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import pygame

from bench.grid_figures import TARGET_P99_MS, Figures, figures
from bench.grid_jack import JACK_PERIOD_FRAMES, JACK_RATE, PROBE_PORT, Jack, Probe, jack_turn
from bench.grid_show import CALLERS, PLAYERS, SIZE, Run, run_show
from bench.stats import load, write_result
from billboard.midi_out import MidiOut


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
        "--sound",
        action="store_true",
        help="the speakers too (SoundOut on SDL's dummy audio driver, before MIDI as in "
        "the show), with the worker that makes the reverb and delay of every note at start",
    )
    p.add_argument(
        "--display",
        choices=("thread", "child", "none"),
        default="thread",
        help="draw in the main thread as frontend.py does (thread, the default), in a "
        "process of its own (child), or not at all (none)",
    )
    p.add_argument(
        "--no-baseline", action="store_true", help="skip the frame-locked show (half the time)"
    )
    p.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    args = p.parse_args(argv)
    if args.duration <= args.warmup + 1:
        p.error("--duration must be at least --warmup + 1 s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_at_start = load()
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
    baseline = None if args.no_baseline else run_show(args, None, None, notes="frame")
    figs = report(args, run, jack_note, baseline)
    if args.json:
        settings = {
            k: getattr(args, k)
            for k in ("duration", "rate", "warmup", "display", "no_jack", "sound")
        }
        settings["switch_interval_ms"] = 1000 * sys.getswitchinterval()
        write_result(args.json, "grid_timing", load_at_start, settings, figs, jack=jack_note)
    return 0


def report(
    args: argparse.Namespace, run: Run, jack_note: str, baseline: Run | None
) -> dict[str, Any]:
    """Print the report; return its figures for the JSON file."""
    figs = figures(run)
    locked = figures(baseline) if baseline is not None else None
    frames = len(run.frame_tops)
    fps = (frames - 1) / (run.frame_tops[-1] - run.frame_tops[0]) if frames > 1 else 0.0
    load_1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
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
        f"{os.cpu_count()} CPU(s), load average {load_1:.2f}, Python "
        f"{sys.version.split()[0]}, switch interval {1000 * sys.getswitchinterval():g} ms, "
        f"pygame-ce {pygame.version.ver}"
    )
    print(f"JACK: {jack_note}")
    print(run.cpu)
    header = f"{'figure (ms)':<44}{'count':>7}{'p50':>9}{'p99':>9}{'max':>9}"
    sections = [
        ("notes scheduled ahead of their step", figs.grid),
        ("presses played at once", figs.press),
        ("context", figs.context),
    ]
    if locked is not None:
        sections.append(
            ("frame-locked baseline: a second show, no scheduler thread", locked.measured())
        )
    for title, rows in sections:
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
    estimate = figs.baseline.p99_ms() / p99 if p99 > 0 else math.inf
    measured = locked.target.p99_ms() / p99 if locked is not None and p99 > 0 else math.nan
    print(
        f"target: grid → MidiOut.note_on p99 ≤ {TARGET_P99_MS:g} ms: {verdict} "
        f"({p99:.3f} ms over {len(figs.target.seconds)} notes); the frame-locked "
        f"baseline's p99 is {measured:.1f}× that measured, {estimate:.1f}× computed"
    )
    out: dict[str, Any] = {
        "fps": fps,
        "presses": run.presses,
        "target_p99_ms": TARGET_P99_MS,
        "scheduler": summary(figs),
        "steps": figs.steps,
        "late_steps": figs.late_steps,
        "jack_heard": figs.heard,
        "jack_matched": figs.matched,
        "cpu": run.cpu,
    }
    if locked is not None:
        out["frame_locked"] = summary(locked)
    return out


def summary(figs: Figures) -> dict[str, dict[str, float | int]]:
    """Every figure of a show by name: count, p50, p99 and max in ms."""
    return {
        f.name.strip(): f.summary() for f in (*figs.grid, *figs.press, *figs.context) if f.seconds
    }


if __name__ == "__main__":
    sys.exit(main())
