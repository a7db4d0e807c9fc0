"""The soak's settings and its plan (pure): who calls on which path, when, and what
they press; and the check that no run of a caller's number shows where it must not."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Any

from bench.soak_crowd import (
    KEYPAD_KEYS,
    CallerPlan,
    Press,
)

CHANNEL = "dialjam"
PATHS = ("ws", "twilio", "twilio-audio", "ari", "seed")
TITLES = {
    "ws": "keypad (ws)",
    "twilio": "twilio (dtmf)",
    "twilio-audio": "twilio (tones)",
    "ari": "asterisk (ari)",
    "seed": "seed (token)",
}
# Callers in a call at once, per path: 14 in all for the eight tracks.
SLOTS = {"ws": 4, "twilio": 3, "twilio-audio": 2, "ari": 3, "seed": 2}
CALL_S = (20.0, 120.0)  # how long a caller stays (a short run: 1/6 to 1/2 of it)
PHRASE = (3, 10)  # presses in a phrase
PRESS_GAP_S = (0.22, 0.5)  # between presses of a phrase (a tone and a pause fit)
PAUSE_S = (1.0, 6.0)  # between phrases
REDIAL_S = (1.0, 6.0)  # before the next caller takes a slot
SAMPLE_EVERY_S = 3.0
MEMORY_GROWTH_MIB = 20.0  # from after the warm-up to the end
# The fake Asterisk starts with the ARI crowd and stops with it: the relay's ARI client
# finds nobody before and after (a drop while it serves shows as a second connection).
EXPECTED_RELAY_ERRORS = frozenset({"ari_unreachable", "ari_dropped"})
ACK_TIMEOUT_S = 5.0
DRAIN_S = 3.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
DIGIT_RUN = 5  # a run this long of a caller's number is personal data


# -- the plan (pure) -------------------------------------------------------------------


def phrases(length: float, rng: random.Random) -> tuple[Press, ...]:
    """A caller's presses over a call of `length` seconds: phrases and pauses, each
    phrase a motif of two to four keys played over and over."""
    presses: list[Press] = []
    t = rng.uniform(0.3, 1.5)
    while t < length - 0.5:
        motif = [rng.choice(KEYPAD_KEYS) for _ in range(rng.randint(2, 4))]
        for n in range(rng.randint(*PHRASE)):
            if t >= length - 0.5:
                break
            presses.append(Press(round(t, 3), motif[n % len(motif)]))
            t += rng.uniform(*PRESS_GAP_S)
        t += rng.uniform(*PAUSE_S)
    return tuple(presses)


def soak_plans(duration: float, slots: int, rng: random.Random) -> list[CallerPlan]:
    """Callers coming and going over `duration` seconds, `slots` of them in a call at
    once: each slot is taken by one caller after another, a few seconds apart."""
    shortest = min(CALL_S[0], duration / 6)
    longest = min(CALL_S[1], duration / 2)
    calls: list[tuple[float, tuple[Press, ...], float]] = []
    for _ in range(slots):
        t = rng.uniform(0.0, 3.0)
        while duration - t >= shortest:
            length = min(rng.uniform(shortest, longest), duration - t)
            presses = phrases(length, rng)
            if presses:
                calls.append((round(t, 3), presses, round(length, 3)))
            t += length + rng.uniform(*REDIAL_S)
    calls.sort(key=lambda call: call[0])
    return [
        CallerPlan(i, start, presses, hang_up) for i, (start, presses, hang_up) in enumerate(calls)
    ]


def digit_windows(numbers: Iterable[str], run: int = DIGIT_RUN) -> set[str]:
    """Every `run` consecutive digits of the numbers."""
    out: set[str] = set()
    for number in numbers:
        digits = "".join(ch for ch in number if ch.isdigit())
        out.update(digits[i : i + run] for i in range(len(digits) - run + 1))
    return out


_DIGIT_RUN = re.compile(r"\d{" + str(DIGIT_RUN) + ",}")


def leaked_runs(value: Any, windows: set[str]) -> list[str]:
    """Digit runs in the strings (keys and values) of a JSON value that share
    DIGIT_RUN digits with a caller's number (JSON numbers, e.g. times, are not text)."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            for match in _DIGIT_RUN.finditer(item):
                run = match.group()
                if any(run[i : i + DIGIT_RUN] in windows for i in range(len(run) - DIGIT_RUN + 1)):
                    found.append(run)
    return found
