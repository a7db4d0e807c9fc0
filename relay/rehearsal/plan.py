"""The rehearsal crowd's options and its plan, both pure: who calls when and presses
what, from the operator's options and a seed.

Two styles of caller. ``steady`` presses like a metronome, one key every 1/rate
seconds, keys uniform: the plumbing under an even load. ``human`` (the default) plays
like people on a keypad: phrases of a few quick presses and pauses between them, each
caller at its own pace, with a few favourite keys and motifs it repeats and varies.
Both send floor(duration × rate) presses a caller (the human style a few per cent
fewer near the path's limit): the human plan only moves them in time, never more than
one phrase ahead of the steady schedule, and never closer together than the ingress
path allows (`min_gap`)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from ..contract.channels import NAME_RULE, valid_installation_name
from ..contract.events import KEYPAD_KEYS

VIAS: Final = ("ws", "twilio", "twilio-audio", "ari", "sip")
STYLES: Final = ("human", "steady")
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
    # Where the arrival check subscribes; empty: `relay`. Another relay sharing the
    # channels through a backplane proves the presses crossed it.
    check_relay: str = ""
    channel: str = "dialjam"
    # The address Twilio reaches and signs (the relay's public_url); empty: `relay`.
    public_url: str = ""
    twilio_token: str = ""  # empty: webhooks are not signed
    # A Webhooks Rule's shared key, "KEYID:SECRET": webhooks and stream upgrades are
    # signed HMAC_SHA256 with it and say so in X-Twilio-Webhooks-Signature-Settings, as
    # Twilio does when a rule matches (instead of the auth token's HMAC_SHA1).
    twilio_shared_key: str = ""
    ari_listen: tuple[str, int] = ("127.0.0.1", 8088)
    # The Stasis app and ARI user the fake Asterisk accepts: the relay's [ari] ones.
    ari_app: str = "dialjam"
    ari_username: str = "dialjam"
    ari_password: str = "dialjam"
    ari_wait: float = 60.0  # how long to wait for the relay's ARI client
    sip_target: tuple[str, int] = ("127.0.0.1", 5060)  # the relay's [sip] listener
    seed: int | None = None  # None: a random seed, printed with the report
    check: bool = True
    drain: float = 3.0  # how long to wait for the last events after the last hang-up
    relay_rate: float = 20.0  # the relay's frames a second for a peer without a token
    style: str = "human"  # how callers press: one of STYLES (see the module's docstring)


def validate(options: CrowdOptions) -> None:
    """Raise `UsageError` (one line for a person) for options the crowd cannot play."""
    o = options
    if o.via not in VIAS:
        raise UsageError(f"--via must be one of {', '.join(VIAS)}, not {o.via!r}")
    if o.style not in STYLES:
        raise UsageError(f"--style must be one of {', '.join(STYLES)}, not {o.style!r}")
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
    for name, url in (
        ("--relay", o.relay),
        ("--public-url", o.public_url),
        ("--check-relay", o.check_relay),
    ):
        if url and not _http_url(url):
            raise UsageError(f"{name} {url!r} must be an http:// or https:// address")
    if not o.relay:
        raise UsageError("--relay must be the relay's http:// or https:// address")
    key_id, sep, secret = o.twilio_shared_key.partition(":")
    if o.twilio_shared_key and not (key_id and sep and secret):
        raise UsageError("--twilio-shared-key must be KEYID:SECRET (a Webhooks shared key)")


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
    """Who calls when and presses what, in `options.style`: starts evenly spread over
    the ramp, every caller hanging up at `duration`; the same options and seed give
    the same plan."""
    rng = random.Random(seed)
    if options.style == "steady":
        return _steady(options, rng)
    spread = options.ramp / options.callers
    return [
        CallerPlan(
            index=i,
            start=i * spread,
            presses=_human_presses(options, rng),
            hang_up=options.duration,
        )
        for i in range(options.callers)
    ]


def _steady(options: CrowdOptions, rng: random.Random) -> list[CallerPlan]:
    """One press every 1/rate seconds (the first half a period in), keys uniform."""
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


# -- the human style (pure) ------------------------------------------------------------
#
# A caller presses the steady plan's floor(duration × rate) keys, phrase by phrase: a
# phrase of 3–12 presses is played at the caller's own pace, centred (give or take
# DRIFT) on the steady times of those presses, so the gaps inside a phrase are shorter
# than 1/rate and the pause before the next phrase longer: at 2 presses a second a
# phrase's presses come 0.15–0.4 s apart and pauses last about 0.5–4.5 s. A caller is
# never more than one phrase ahead of the steady schedule, its long-run rate is `rate`,
# and its pace scales with the square root of 1/rate: slow callers press a little
# slower and pause much longer. The first phrase is moved to start within a second,
# the later ones less and less (the plan is stretched, the hang-up fixed). Near the
# path's limit there is no room for pauses and the plan turns steady; the few presses
# that `min_gap` pushes past `duration` are dropped (at most a few per cent).

REFERENCE_RATE: Final = 2.0  # presses a second that PACE_S is for
PHRASE: Final = (3, 12)  # presses in a phrase
PACE_S: Final = (0.18, 0.35)  # a caller's gap inside a phrase at REFERENCE_RATE
PACE_MAX: Final = 0.7  # …at most this share of 1/rate, so that pauses stay the longer gaps
JITTER: Final = 0.15  # each gap inside a phrase: the pace × (1 ± JITTER), off any lattice
DRIFT: Final = 0.2  # each phrase early or late by up to this share of 1/rate
FIRST_S: Final = (0.2, 1.0)  # the first press, after getting through (or 1/(2 rate) if sooner)
FAVOURITES: Final = (2, 4)  # favourite digits of a caller
# A key is one of the caller's favourites, another digit, "*" or "#", with these odds.
KEY_ODDS: Final = (0.80, 0.17, 0.015, 0.015)
MOTIF: Final = (2, 4)  # keys of a new motif, played over and over through its phrase
# A phrase's motif is new, or one the caller played before, repeated or varied.
MOTIF_ODDS: Final = (0.3, 0.35, 0.35)
LAST_MOTIF: Final = 0.6  # of repeated and varied motifs, the share taken from the last phrase
GAP_HEADROOM: Final = 1.01  # presses stay 1 % further apart than the path's limit
DIGITS: Final = tuple(k for k in KEYPAD_KEYS if k.isdigit())


def min_gap(options: CrowdOptions) -> float:
    """The shortest gap the human plan leaves between two presses of one caller: 1 %
    more than the path's limit allows (MAX_AUDIO_RATE for twilio-audio, else MAX_RATE,
    and for a keypad the relay's per-connection `relay_rate`), so never faster than a
    steady plan could legally go."""
    limit = MAX_AUDIO_RATE if options.via == "twilio-audio" else MAX_RATE
    if options.via == "ws" and options.relay_rate > 0:
        limit = min(limit, options.relay_rate)
    return GAP_HEADROOM / limit


def _human_presses(options: CrowdOptions, rng: random.Random) -> tuple[Press, ...]:
    """One caller's presses in the human style (see above)."""
    period = 1.0 / options.rate
    floor = min_gap(options)
    pace = rng.uniform(*PACE_S) * math.sqrt(REFERENCE_RATE / options.rate)
    pace = max(floor, min(pace, PACE_MAX * period))
    favourites = tuple(rng.sample(DIGITS, rng.randint(*FAVOURITES)))
    motifs: list[list[str]] = []
    times: list[float] = []
    keys: list[str] = []
    for length in phrase_lengths(math.floor(options.duration * options.rate), rng):
        motif = _motif(motifs, favourites, rng)
        motifs.append(motif)
        offsets = [0.0]
        for _ in range(length - 1):
            gap = pace * rng.uniform(1 - JITTER, 1 + JITTER)
            offsets.append(offsets[-1] + max(floor, gap))
        # The middle of this phrase's presses on the steady schedule, give or take DRIFT.
        middle = (len(times) + length / 2) * period + rng.uniform(-DRIFT, DRIFT) * period
        times += [middle - offsets[-1] / 2 + x for x in offsets]
        keys += [motif[k % len(motif)] for k in range(length)]
    # The first press within about a second of getting through (as soon as the steady
    # plan's when that is sooner): the plan is moved by `shift` at its start and by
    # less and less after, the hang-up fixed, so no press moves past it.
    first = min(rng.uniform(*FIRST_S), max(times[0], period / 2))
    end = options.duration
    shift = (first - times[0]) / (1 - times[0] / end)
    presses: list[Press] = []
    at = -math.inf
    for t, key in zip(times, keys, strict=True):
        at = max(t + shift * (1 - t / end), at + floor)
        if at >= end:
            break
        presses.append(Press(at, key))
    return tuple(presses)


def phrase_lengths(count: int, rng: random.Random) -> list[int]:
    """`count` presses cut into phrases of PHRASE presses (one shorter phrase only when
    `count` itself is)."""
    low, high = PHRASE
    lengths: list[int] = []
    left = count
    while left > 0:
        n = min(rng.randint(low, high), left)
        if 0 < left - n < low:  # the rest would be too short a phrase
            n = left - low if left - low >= low else left
        lengths.append(n)
        left -= n
    return lengths


def _key(favourites: Sequence[str], rng: random.Random) -> str:
    """A key as the caller picks it: mostly a favourite (the first ones most), now and
    then another digit, rarely "*" or "#"."""
    favourite, other, star, _ = KEY_ODDS
    x = rng.random()
    if x < favourite:
        return rng.choices(favourites, weights=range(len(favourites), 0, -1))[0]
    if x < favourite + other:
        return rng.choice([d for d in DIGITS if d not in favourites])
    return "*" if x < favourite + other + star else "#"


def _motif(
    earlier: Sequence[list[str]], favourites: Sequence[str], rng: random.Random
) -> list[str]:
    """The keys a phrase plays over and over: new, or (people repeat what sounded good)
    a motif the caller played before, as it was or with one change: a key replaced, a
    key added, or two neighbours swapped."""
    new, repeated, _ = MOTIF_ODDS
    x = rng.random()
    if not earlier or x < new:
        return [_key(favourites, rng) for _ in range(rng.randint(*MOTIF))]
    base = earlier[-1] if rng.random() < LAST_MOTIF else rng.choice(earlier)
    motif = list(base)
    if x < new + repeated:
        return motif
    i = rng.randrange(len(motif))
    change = rng.randrange(3)
    if change == 0:
        motif[i] = _key(favourites, rng)
    elif change == 1 and len(motif) <= MOTIF[1]:
        motif.insert(i, _key(favourites, rng))
    else:
        j = (i + 1) % len(motif)
        motif[i], motif[j] = motif[j], motif[i]
    return motif


def fake_numbers(count: int, rng: random.Random) -> list[str]:
    """Distinct made-up numbers, +1555 and seven digits (555 is no real area code)."""
    return [f"+1555{n:07d}" for n in rng.sample(range(10**7), count)]
