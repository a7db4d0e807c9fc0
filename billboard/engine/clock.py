"""The shared beat: a 16th-note grid at a BPM, with swing.

Time is always passed in (seconds on whatever monotonic clock the adapters own); the
grid never reads a clock itself, so the engine runs in simulated time in tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from relay.contract.events import TEMPO_MAX_BPM, TEMPO_MIN_BPM

STEPS_PER_BEAT = 4
# The contract's tempo range: the console offers it, a `tempo` command is clamped to it.
MIN_BPM = TEMPO_MIN_BPM
MAX_BPM = TEMPO_MAX_BPM


@dataclass(slots=True)
class Grid:
    """Step `n` sounds at `time_of(n)`. Odd steps (the off-beat 16ths) are delayed by
    `swing` × a step: 0 is straight, 0.33 a triplet feel; at most 0.5."""

    bpm: float = 112.0
    swing: float = 0.0
    anchor_time: float = 0.0
    anchor_step: int = 0

    def __post_init__(self) -> None:
        self.bpm = min(MAX_BPM, max(MIN_BPM, self.bpm))
        self.swing = min(0.5, max(0.0, self.swing))

    @property
    def step_duration(self) -> float:
        return 60.0 / self.bpm / STEPS_PER_BEAT

    def _base(self, step: int) -> float:
        return self.anchor_time + (step - self.anchor_step) * self.step_duration

    def time_of(self, step: int) -> float:
        """When step `step` sounds."""
        t = self._base(step)
        if step % 2:
            t += self.swing * self.step_duration
        return t

    def step_at(self, t: float) -> int:
        """The latest step that has sounded by time `t`."""
        step = self.anchor_step + math.floor((t - self.anchor_time) / self.step_duration)
        if step % 2 and t < self.time_of(step):
            step -= 1
        return step

    def set_bpm(self, bpm: float, now: float) -> None:
        """Change tempo from the next step on, without a jump in the grid."""
        nxt = self.step_at(now) + 1
        self.anchor_time, self.anchor_step = self._base(nxt), nxt
        self.bpm = min(MAX_BPM, max(MIN_BPM, bpm))
