"""The rehearsal crowd's options and its plan, both pure: who calls when and presses
what, from the operator's options and a seed."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from ..contract.channels import NAME_RULE, valid_installation_name
from ..contract.events import KEYPAD_KEYS

VIAS: Final = ("ws", "twilio", "twilio-audio", "ari")
MAX_CALLERS: Final = 2000  # one process, loopback: beyond this the crowd is the bottleneck
MAX_RATE: Final = 20.0  # presses a second per caller (a person manages about 10)
MAX_AUDIO_RATE: Final = 6.0  # an 80 ms tone and ≥ 80 ms of silence before the next one


class UsageError(Exception):
    """An option the operator must fix: one line, exit status 2."""


# -- options ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CrowdOptions:
    callers: int = 8
    rate: float = 2.0  # presses a second per caller
    duration: float = 20.0  # seconds each caller plays
    ramp: float = 2.0  # callers' starts spread over this many seconds
    via: str = "ws"
    relay: str = "http://127.0.0.1:8080"
    channel: str = "dialjam"
    # The address Twilio reaches and signs (the relay's public_url); empty: `relay`.
    public_url: str = ""
    twilio_token: str = ""  # empty: webhooks are not signed
    ari_listen: tuple[str, int] = ("127.0.0.1", 8088)
    # The Stasis app and ARI user the fake Asterisk accepts: the relay's [ari] ones.
    ari_app: str = "dialjam"
    ari_username: str = "dialjam"
    ari_password: str = "dialjam"
    ari_wait: float = 60.0  # how long to wait for the relay's ARI client
    seed: int | None = None  # None: a random seed, printed with the report
    check: bool = True
    drain: float = 3.0  # how long to wait for the last events after the last hang-up
    relay_rate: float = 20.0  # the relay's frames a second for a peer without a token


def validate(options: CrowdOptions) -> None:
    """Raise `UsageError` (one line for a person) for options the crowd cannot play."""
    o = options
    if o.via not in VIAS:
        raise UsageError(f"--via must be one of {', '.join(VIAS)}, not {o.via!r}")
    if not 1 <= o.callers <= MAX_CALLERS:
        raise UsageError(f"--callers must be 1–{MAX_CALLERS}, not {o.callers}")
    if o.via == "ws" and o.relay_rate > 0 and o.rate >= o.relay_rate:
        raise UsageError(
            f"--rate {o.rate:g} is not below the relay's limit of {o.relay_rate:g} frames a "
            "second for a keypad (no token): its presses would be refused"
        )
    limit = MAX_AUDIO_RATE if o.via == "twilio-audio" else MAX_RATE
    if not 0 < o.rate <= limit or not math.isfinite(o.rate):
        extra = " (a tone and a pause must fit between presses)" if limit == MAX_AUDIO_RATE else ""
        raise UsageError(f"--rate must be more than 0 and at most {limit:g} for {o.via}{extra}")
    if not 0 < o.duration <= 3600 or not math.isfinite(o.duration):
        raise UsageError("--duration must be more than 0 and at most 3600 s")
    if math.floor(o.duration * o.rate) < 1:
        raise UsageError("--duration × --rate gives no press per caller: play longer or faster")
    if not 0 <= o.ramp <= 600 or not math.isfinite(o.ramp):
        raise UsageError("--ramp must be 0–600 s")
    if not 0 < o.drain <= 60 or not 0 < o.ari_wait <= 3600:
        raise UsageError("--drain must be 0–60 s and --ari-wait 0–3600 s (more than 0)")
    if not valid_installation_name(o.channel):
        raise UsageError(f"--channel {o.channel!r} {NAME_RULE}")
    for name, url in (("--relay", o.relay), ("--public-url", o.public_url)):
        if url and not _http_url(url):
            raise UsageError(f"{name} {url!r} must be an http:// or https:// address")
    if not o.relay:
        raise UsageError("--relay must be the relay's http:// or https:// address")


def _http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# -- the plan (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class Press:
    at: float  # seconds after the caller got through
    key: str


@dataclass(frozen=True)
class CallerPlan:
    index: int
    start: float  # seconds after the crowd starts
    presses: tuple[Press, ...]
    hang_up: float  # seconds after the caller got through


def plan_crowd(options: CrowdOptions, seed: int) -> list[CallerPlan]:
    """Who calls when and presses what: starts evenly spread over the ramp, one press
    every 1/rate seconds (the first half a period in), keys drawn from `seed`."""
    rng = random.Random(seed)
    n = math.floor(options.duration * options.rate)
    period = 1.0 / options.rate
    spread = options.ramp / options.callers
    return [
        CallerPlan(
            index=i,
            start=i * spread,
            presses=tuple(Press((k + 0.5) * period, rng.choice(KEYPAD_KEYS)) for k in range(n)),
            hang_up=options.duration,
        )
        for i in range(options.callers)
    ]


def fake_numbers(count: int, rng: random.Random) -> list[str]:
    """Distinct made-up numbers, +1555 and seven digits (555 is no real area code)."""
    return [f"+1555{n:07d}" for n in rng.sample(range(10**7), count)]
