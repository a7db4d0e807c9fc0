"""The names bench/soak.py takes from the rehearsal crowd (relay/rehearsal/), in one
place: the crowd is the soak's callers on every ingress path, and when it moves or
renames something, this is the one file to change."""

from relay.rehearsal.crowd import (
    KEYPAD_KEYS,
    CallerPlan,
    Press,
    Report,
    fake_numbers,
    run_crowd,
)
from relay.rehearsal.crowd import Options as CrowdOptions

__all__ = [
    "KEYPAD_KEYS",
    "CallerPlan",
    "CrowdOptions",
    "Press",
    "Report",
    "fake_numbers",
    "run_crowd",
]
