"""The figures of bench/grid_timing.py: how late each note left, split by cause,
and where the JACK input heard it."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.grid_show import SIZE, Run
from bench.stats import percentile
from billboard.engine import NoteOn

TARGET_P99_MS = 1.0


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

    def summary(self) -> dict[str, float | int]:
        """count, p50, p99 and max in milliseconds (for the JSON file; not empty)."""
        ms = sorted(1000 * s for s in self.seconds)
        return {
            "count": len(ms),
            "p50_ms": percentile(ms, 0.5),
            "p99_ms": percentile(ms, 0.99),
            "max_ms": ms[-1],
        }


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

    def measured(self) -> list[Figure]:
        """The figures a show measured itself (not the computed next-frame estimates,
        not the scheduler's own records): the baseline's show prints these."""
        return [self.target, self.grid[1], self.grid[2], self.press[0], self.context[2]]


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
    sender = "scheduler" if run.notes == "scheduler" else "draw loop"
    target = Figure(f"grid → MidiOut.note_on ({sender})", late, "the target")
    baseline = Figure("grid → next frame (computed)", naive_grid, "frame-locked estimate")
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
        Figure(f"press → MidiOut.note_on ({sender})", press, "submitted → first note-on"),
        Figure(
            "Scheduler.timing.press_latency",
            run.scheduler_press_latency,
            "as the HUD reads it (whole run)",
        ),
        Figure("press → next frame (computed)", naive_press, "frame-locked estimate"),
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
