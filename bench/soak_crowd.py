"""The names bench/soak.py takes from the rehearsal crowd (relay/rehearsal/), in one
place: the crowd is the soak's callers on every ingress path, and when it moves or
renames something, this is the one file to change."""

from relay.contract.events import KEYPAD_KEYS
from relay.rehearsal.crowd import run_crowd
from relay.rehearsal.plan import CallerPlan, CrowdOptions, Press, fake_numbers
from relay.rehearsal.report import CrowdReport as Report

__all__ = [
    "KEYPAD_KEYS",
    "CallerPlan",
    "CrowdOptions",
    "Press",
    "Report",
    "fake_numbers",
    "run_crowd",
]
