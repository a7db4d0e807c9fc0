"""The one backoff: how long to wait before trying a lost connection again.

Pure (attempt in, seconds out, randomness passed in), so every client that reconnects
— the ARI client, the billboard's relay link, the rehearsal crowd — waits the same
way, and a test checks the waits without sleeping.
"""

from __future__ import annotations

from collections.abc import Callable


def backoff_delay(attempt: int, first: float, cap: float, rand: Callable[[], float]) -> float:
    """The wait before try `attempt` (0 = the first after a loss): `first`, doubled at
    each attempt, capped at `cap`, with "equal jitter" (half of it fixed, half times
    `rand()`, a number in [0, 1]), so that many clients do not knock on a restarted
    server at the same instant, and none waits less than half its step.

    The AWS Architecture Blog's "Exponential Backoff And Jitter" (2015) compares the
    jitters; equal jitter keeps a floor under each wait."""
    base = min(cap, min(first, cap) * 2.0 ** min(max(attempt, 0), 32))
    return base / 2 + base / 2 * rand()


__all__ = ["backoff_delay"]
