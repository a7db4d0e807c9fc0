#!/usr/bin/env python3
"""The phone mix renderer (``billboard/phone_mix.py``): how many callers' mixes one
core renders in real time.

``.venv/bin/python bench/phone_mix.py [--seconds S] [--json FILE]`` plays a busy
night into a `PhoneMixer` — all eight default tracks, each striking a note every 16th
at 120 bpm (drums, bass, chords as three-note stacks, …), the sample library's real
sounds — on one thread pinned to one core, and asks it for 20 ms frames, for about
``--seconds`` (5) of wall-clock time per figure:

- the shared mix alone, then the shared mix and one mix per track-holder (8): what a
  frame costs, so what one more holder's mix costs, and so how many holder mixes one
  core renders in real time (target ≥ 200);
- the worst minute for cues: 200 callers all hearing a cue in the same frame (each
  then gets a mix of their own), as a share of the 20 ms a frame lasts;
- the baseline, in the same run: a mix rendered per caller (a mixer of its own for
  each, its voices and sums done again), and how many callers that serves per core.

Sound preparation (resampling and band-limiting each note once) is done before the
timing and reported apart. The exit code is 0 whatever the numbers: a measurement.

    python bench/phone_mix.py [--seconds S] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from bench.stats import load, write_result
from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.phone_mix import FRAME, RATE, PhoneMixer, PhoneSounds
from billboard.samples import load_sample_sets

SOUNDS = Path(__file__).resolve().parent.parent / "sounds"
NIGHT_S = 30.0
FRAME_S = FRAME / RATE
CALLERS = 200
PATTERNS = {  # each track's notes, one per 16th, cycled
    "drums": ((36,), (42,), (38,), (42,)),
    "bass": ((36,), (36,), (43,), (41,)),
    "chords": ((60, 64, 67), (62, 65, 69), (59, 62, 67), (60, 64, 67)),
    "lead": ((72,), (74,), (76,), (79,), (77,)),
    "pluck": ((67,), (71,), (69,)),
    "pad": ((55, 59), (57, 60)),
    "bells": ((84,), (88,), (91,)),
    "percussion": ((60,), (62,), (70,), (75,)),
}


def night() -> list[NoteOn | NoteOff]:
    notes: list[NoteOn | NoteOff] = []
    step = 60 / 120 / 4
    for n in range(int(NIGHT_S / step)):
        t = n * step
        for track, pattern in PATTERNS.items():
            for note in pattern[n % len(pattern)]:
                notes.append(NoteOn(t, n, track, 0, note, 100))
                notes.append(NoteOff(t + step * 0.9, n, track, 0, note))
    return sorted(notes, key=lambda n: n.time)


def mixer_for(
    notes: list[NoteOn | NoteOff], sets: Any, sounds: PhoneSounds | None = None
) -> PhoneMixer:
    mixer = PhoneMixer(sets, DEFAULT_TRACKS, sounds=sounds)
    for note in notes:
        if isinstance(note, NoteOn):
            mixer.note_on(note)
        else:
            mixer.note_off(note)
    return mixer


def timed(seconds: float, run: Callable[[], int]) -> tuple[int, float]:
    """(frames, elapsed): `run` (which renders some frames) again until `seconds`."""
    frames, elapsed = 0, 0.0
    while elapsed < seconds:
        start = time.perf_counter()
        frames += run()
        elapsed += time.perf_counter() - start
    return frames, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    args = parser.parse_args()
    load_at_start = load()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    sets = load_sample_sets(SOUNDS)
    notes = night()
    count = round(NIGHT_S / FRAME_S)
    start = time.perf_counter()
    warm = mixer_for(notes, sets)
    for note in notes:
        if isinstance(note, NoteOn):
            warm.prepare(note)
    prepare_s = time.perf_counter() - start
    sounds = len(warm.sounds)
    holders = tuple(t.name for t in DEFAULT_TRACKS)

    def frames(held: tuple[str, ...], cued: int = 0) -> Callable[[], int]:
        def run() -> int:
            mixer = mixer_for(notes, sets, warm.sounds)  # the prepared sounds, shared
            for n in range(count):
                now = n * FRAME_S
                if cued and n % 50 == 25:  # once a second, every caller cued at once
                    for c in range(cued):
                        mixer.cue(f"c{c}", "track", now)
                frame = mixer.frame(now, held)
                for c in range(cued):
                    frame.for_caller(f"c{c}", held[c % len(held)] if held else None)
            return count

        return run

    def us_per_frame(held: tuple[str, ...], cued: int = 0) -> float:
        done, elapsed = timed(args.seconds, frames(held, cued))
        return elapsed / done * 1e6

    budget_us = FRAME_S * 1e6
    shared_us = us_per_frame(())
    all_us = us_per_frame(holders)
    per_holder_us = max(1e-3, (all_us - shared_us) / len(holders))
    holder_mixes = int((budget_us - shared_us) / per_holder_us)
    # The cue frames alone: every caller's own mix made in the frames a cue starts.
    cued_us = us_per_frame(holders, CALLERS)
    baseline_callers = int(budget_us / shared_us)
    print(f"phone mix, one core, a busy night ({len(notes) // 2:,} notes, 8 tracks, 120 bpm)")
    print(f"  preparing {sounds} notes' sounds at 8 kHz, band-limited: {prepare_s:.2f} s, once")
    print(f"  shared mix only:          {shared_us:7.1f} µs per 20 ms frame")
    print(
        f"  shared + 8 holders' mixes: {all_us:7.1f} µs per frame  "
        f"({budget_us / all_us:,.0f}× real time)"
    )
    print(f"  one more holder's mix:    {per_holder_us:7.1f} µs")
    verdict = "PASS" if holder_mixes >= CALLERS else "MISS"
    print(
        f"  holder mixes one core renders in real time: {holder_mixes:,} "
        f"({verdict}: target ≥ {CALLERS})"
    )
    print(
        f"  {CALLERS} callers, every one cued once a second: {cued_us:7.1f} µs per frame "
        f"({100 * cued_us / budget_us:.1f} % of a core)"
    )
    print(
        f"  baseline, a mixer per caller: {shared_us:.1f} µs each → {baseline_callers:,} callers "
        f"per core; render-once serves any number on {100 * all_us / budget_us:.1f} % of a core "
        f"plus the sending"
    )
    figures = {
        "prepare_s": prepare_s,
        "sounds": sounds,
        "shared_us_per_frame": shared_us,
        "all_holders_us_per_frame": all_us,
        "per_holder_mix_us": per_holder_us,
        "holder_mixes_real_time": holder_mixes,
        "cued_callers": CALLERS,
        "cued_us_per_frame": cued_us,
        "baseline_callers_per_core": baseline_callers,
        "real_time_factor": budget_us / all_us,
    }
    if args.json:
        settings = {"seconds": args.seconds, "night_s": NIGHT_S, "callers": CALLERS}
        write_result(args.json, "phone_mix", load_at_start, settings, figures)


if __name__ == "__main__":
    main()
