"""The rehearsal crowd: N simulated callers play through one ingress path of a running
relay while a subscriber on the channel checks that every press arrives.

    python -m relay.rehearsal --callers 50 --rate 2 --via ws|twilio|twilio-audio|ari

Before doors open the operator runs it against the installation's relay (the one the
billboard shows): the billboard plays the crowd, and the report says whether every key
press of every caller arrived once, in order, and how late. It is also the end-to-end
load test of the relay.

The paths, each speaking exactly what the real thing sends:

- ``ws``: browser keypads (web/js/keypad.js): a WebSocket on /ws, ``subscriber`` to
  CHANNEL:state (v2), then ``publisher`` frames with ``join`` / ``digit`` / ``leave``.
  The caller id is the keypad's own random pseudonym, so the crowd knows it.
- ``twilio``: phones through Twilio Media Streams: the signed voice webhook, its TwiML
  parsed, the stream opened (signed over the TwiML's wss:// URL) and fed ``connected``,
  ``start``, 20 ms ``media`` frames of silence in real time, ``dtmf`` messages and
  ``stop`` (WIRE.md). The caller id is the TwiML's ``<Parameter name="caller">``.
- ``twilio-audio``: the same, but each press is a DTMF tone inside the audio (for the
  relay's in-band detector) and no ``dtmf`` message is sent.
- ``ari``: an Asterisk stand-in (relay.rehearsal.fake_ari) listens; the relay's ARI
  client connects to it, and each caller is a StasisStart, ChannelDtmfReceived per
  press and a hang-up. The gateway names the caller with a keyed pseudonym of the
  number that the crowd cannot (and must not) compute; call starts are serialised
  instead, so the first unclaimed ``join`` from an ARI caller on the channel after a
  StasisStart names that call's caller.

The check: a v2 subscriber (as a billboard is, no token) counts, per caller, the
``digit`` events against the presses sent, in order: a press never seen is lost, one
seen twice duplicated, one seen after a later press out of order; latency is from the
moment the press left the crowd to the moment the subscriber read it. Exit status 0
when every caller got through and every press arrived once and in order, 1 otherwise,
2 for a bad option.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import secrets
import signal
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from .. import protocol
from ..config import ConfigError, load_ari_config, load_config, load_twilio_config
from ..gateways.common import websocket_url

if TYPE_CHECKING:
    from .fake_ari import FakeAri

log = logging.getLogger("relay.rehearsal.crowd")

VIAS: Final = ("ws", "twilio", "twilio-audio", "ari")
MAX_CALLERS: Final = 2000  # one process, loopback: beyond this the crowd is the bottleneck
MAX_RATE: Final = 20.0  # presses a second per caller (a person manages about 10)
MAX_AUDIO_RATE: Final = 6.0  # an 80 ms tone and ≥ 80 ms of silence before the next one
KEYPAD_KEYS: Final = "0123456789*#"  # the keys of web/keypad and of a phone's pad
FRAME_S: Final = 0.020  # one Twilio media frame: 20 ms of 8 kHz μ-law
FRAME_BYTES: Final = 160
TONE_MS: Final = 80  # a short, firm press (Q.24: ≥ 40 ms must be heard)
ARI_PRESS_MS: Final = 100
ARI_JOIN_TIMEOUT_S: Final = 5.0
CONNECT_TIMEOUT_S: Final = 10.0
PROGRESS_EVERY_S: Final = 5.0
SILENCE_B64: Final = base64.b64encode(b"\xff" * FRAME_BYTES).decode()  # μ-law silence
ACCOUNT_SID: Final = "AC" + "0" * 24 + "c70bd0" + "00"  # an obviously fake account
TO_NUMBER: Final = "+15555550100"  # the installation's (fake) number


class UsageError(Exception):
    """An option the operator must fix: one line, exit status 2."""


class CallerFailed(Exception):
    """A caller could not get through; `kind` is what the report counts."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


# -- options ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
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


def validate(options: Options) -> None:
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
    if not protocol.valid_channel(o.channel) or o.channel.endswith(
        (protocol.CONTROL_SUFFIX, protocol.STATE_SUFFIX)
    ):
        raise UsageError(
            f"--channel {o.channel!r} must be 1–64 characters of A-Z a-z 0-9 _ . : - "
            "and not end in :control or :state"
        )
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


def plan_crowd(options: Options, seed: int) -> list[CallerPlan]:
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


# -- matching what was seen against what was sent (pure) --------------------------------


@dataclass(frozen=True)
class Match:
    sent: int
    seen: int
    lost: int
    duplicated: int
    out_of_order: int
    latencies: tuple[float, ...]  # seconds, one per press seen


def match_presses(sent: Sequence[tuple[str, float]], seen: Sequence[tuple[str, float]]) -> Match:
    """Pair one caller's presses (key, time sent) with the digits a subscriber saw
    (key, time seen), in order.

    A digit is paired with the first unpaired press of the same key at or after the
    last pair and not sent after it was seen; failing that, with an earlier unpaired
    one (out of order); failing that, it is a duplicate. Presses never paired are
    lost. Keys repeat, so this is the likeliest story, not proof; a relay that keeps
    order and loses nothing always gets a perfect score."""
    paired = [False] * len(sent)
    latencies: list[float] = []
    duplicated = out_of_order = 0
    cursor = 0
    for key, when in seen:
        hit = next(
            (
                j
                for j in range(cursor, len(sent))
                if not paired[j] and sent[j][0] == key and sent[j][1] <= when
            ),
            None,
        )
        if hit is not None:
            cursor = hit + 1
        else:
            hit = next(
                (j for j in range(cursor) if not paired[j] and sent[j][0] == key),
                None,
            )
            if hit is None:
                duplicated += 1
                continue
            out_of_order += 1
        paired[hit] = True
        latencies.append(max(0.0, when - sent[hit][1]))
    return Match(
        sent=len(sent),
        seen=len(seen),
        lost=paired.count(False),
        duplicated=duplicated,
        out_of_order=out_of_order,
        latencies=tuple(latencies),
    )


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


# -- the report ------------------------------------------------------------------------


@dataclass
class Report:
    via: str
    relay: str
    channel: str
    seed: int
    checked: bool
    callers: int
    callers_failed: int = 0
    joins_seen: int = 0  # callers whose join the subscriber saw
    leaves_seen: int = 0
    presses_planned: int = 0
    presses_sent: int = 0
    presses_seen: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_max_ms: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    media_lag_max_ms: float | None = None  # twilio paths: how far behind real time
    interrupted: bool = False
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Every caller got through and, when checked, every press arrived once and
        in order, and every join and leave was seen."""
        if self.callers_failed or self.interrupted:
            return False
        if not self.checked:
            return True
        whole = self.joins_seen == self.leaves_seen == self.callers
        return whole and not (self.lost or self.duplicated or self.out_of_order)

    def render(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} ms"

        lines = [
            f"dialjam crowd: {self.callers} callers via {self.via} → {self.relay}, "
            f"channel {self.channel} (seed {self.seed}, {self.elapsed_s:.1f} s)",
            f"  callers     {self.callers}: {self.callers - self.callers_failed} got through, "
            f"{self.callers_failed} failed",
        ]
        if self.checked:
            lines += [
                f"  seen        {self.joins_seen} joins, {self.leaves_seen} leaves",
                f"  presses     {self.presses_planned} planned, {self.presses_sent} sent, "
                f"{self.presses_seen} seen: {self.lost} lost, {self.duplicated} duplicated, "
                f"{self.out_of_order} out of order",
                f"  latency     p50 {ms(self.latency_p50_ms)}, p99 {ms(self.latency_p99_ms)}, "
                f"max {ms(self.latency_max_ms)} (sent → seen by the subscriber)",
            ]
        else:
            lines.append(
                f"  presses     {self.presses_planned} planned, {self.presses_sent} sent "
                "(not checked: --no-check)"
            )
        if self.media_lag_max_ms is not None:
            note = (
                "  (the crowd fell behind real time: it, not the relay, may be the bottleneck)"
                if self.media_lag_max_ms > 100
                else ""
            )
            lines.append(f"  audio       at most {self.media_lag_max_ms:.1f} ms late{note}")
        if self.errors:
            lines.append("  errors      " + ", ".join(f"{k} ×{n}" for k, n in self.errors.items()))
        else:
            lines.append("  errors      none")
        if self.interrupted:
            verdict = "INTERRUPTED: the crowd was stopped before the end"
        elif self.ok and self.checked:
            verdict = "PASS: every caller got through; every press arrived once, in order"
        elif self.ok:
            verdict = "PASS: every caller got through (arrival not checked)"
        else:
            verdict = "FAIL: " + "; ".join(self.problems())
        lines.append(f"  verdict     {verdict}")
        return "\n".join(lines)

    def problems(self) -> list[str]:
        out = []
        if self.callers_failed:
            out.append(f"{self.callers_failed} callers failed")
        if self.checked:
            if self.lost or self.duplicated or self.out_of_order:
                out.append(
                    f"{self.lost} lost, {self.duplicated} duplicated, "
                    f"{self.out_of_order} out of order"
                )
            through = self.callers - self.callers_failed
            if self.joins_seen != through or self.leaves_seen != through:
                out.append(
                    f"joins seen {self.joins_seen}/{through}, "
                    f"leaves seen {self.leaves_seen}/{through} of the callers who got through"
                )
        return out or ["see above"]


# -- the tally: what was sent and what was seen -----------------------------------------


@dataclass
class CallerLog:
    index: int
    sent: list[tuple[str, float]] = field(default_factory=list)
    seen: list[tuple[str, float]] = field(default_factory=list)
    joins: int = 0
    leaves: int = 0
    ended: bool = False  # hung up (a leave is due)


class Tally:
    """The crowd's books: presses sent per caller, events the subscriber saw, errors.

    For ARI, `joins_to_claim` collects joins of callers the crowd does not know yet
    (from `source`), so a serialised call start can claim the one its call caused."""

    def __init__(self, claim_source: str | None = None) -> None:
        self.by_caller: dict[str, CallerLog] = {}
        self.errors: Counter[str] = Counter()
        self.failed: dict[int, str] = {}
        self.claim_source = claim_source
        self.joins_to_claim: deque[tuple[str, float]] = deque()
        self.seen_events = 0
        self.changed = asyncio.Event()

    def add_caller(self, caller: str, index: int) -> CallerLog:
        log_ = self.by_caller.get(caller)
        if log_ is None:
            log_ = self.by_caller[caller] = CallerLog(index)
        return log_

    def sent(self, caller: str, key: str, when: float) -> None:
        self.by_caller[caller].sent.append((key, when))

    def fail(self, index: int, kind: str) -> None:
        self.failed[index] = kind
        self.errors[kind] += 1

    def error(self, kind: str, n: int = 1) -> None:
        self.errors[kind] += n

    def seen(self, data: Any, when: float) -> None:
        """One event's `data` as the subscriber received it."""
        if not isinstance(data, dict):
            return
        self.seen_events += 1
        caller = data.get("caller")
        event = data.get("event")
        log_ = self.by_caller.get(caller) if isinstance(caller, str) else None
        if log_ is None:
            if event == "join" and self.claim_source and data.get("source") == self.claim_source:
                self.joins_to_claim.append((cast(str, caller), when))
                self.changed.set()
            return
        if event == "digit":
            digit = data.get("digit")
            if isinstance(digit, str):
                log_.seen.append((digit, when))
        elif event == "join":
            log_.joins += 1
        elif event == "leave":
            log_.leaves += 1
        self.changed.set()

    def settled(self) -> bool:
        """Everything the callers sent has been seen (or can no longer be)."""
        return all(
            len(c.seen) >= len(c.sent) and c.joins > 0 and (c.leaves > 0 or not c.ended)
            for c in self.by_caller.values()
            if c.index not in self.failed
        )

    def counts(self) -> tuple[int, int]:
        """(presses sent, digits seen) so far, for the progress line."""
        logs = self.by_caller.values()
        return sum(len(c.sent) for c in logs), sum(len(c.seen) for c in logs)

    def report(self, options: Options, seed: int, plans: Sequence[CallerPlan]) -> Report:
        r = Report(
            via=options.via,
            relay=options.relay,
            channel=options.channel,
            seed=seed,
            checked=options.check,
            callers=len(plans),
            callers_failed=len(self.failed),
            presses_planned=sum(len(p.presses) for p in plans),
        )
        latencies: list[float] = []
        for c in self.by_caller.values():
            m = match_presses(c.sent, c.seen)
            r.presses_sent += m.sent
            if c.index in self.failed:
                continue  # its presses cannot be judged: the call broke
            r.joins_seen += c.joins > 0
            r.leaves_seen += c.leaves > 0
            r.presses_seen += m.seen
            r.lost += m.lost
            r.duplicated += m.duplicated
            r.out_of_order += m.out_of_order
            latencies += m.latencies
        latencies.sort()
        to_ms = [v * 1000 for v in latencies]
        r.latency_p50_ms = percentile(to_ms, 50)
        r.latency_p99_ms = percentile(to_ms, 99)
        r.latency_max_ms = to_ms[-1] if to_ms else None
        r.errors = dict(sorted(self.errors.items()))
        return r


# -- the crowd's I/O -------------------------------------------------------------------


def make_fake_ari(options: Options) -> FakeAri:
    """The Asterisk stand-in, with the app and ARI user of the relay's [ari] table (so
    the installation's own relay connects to it unchanged)."""
    from .fake_ari import FakeAri  # only an ARI rehearsal needs its server

    return FakeAri(
        app=options.ari_app, username=options.ari_username, password=options.ari_password
    )


async def close_with_reader(
    ws: aiohttp.ClientWebSocketResponse, reader: asyncio.Task[None]
) -> None:
    """A caller's socket is done: close it and stop the task that read it."""
    await ws.close()
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader


def ws_base(http_url: str) -> str:
    """http://host:port/prefix → ws://host:port/prefix (https → wss)."""
    return websocket_url(http_url.rstrip("/"))


def on_relay(stream_url: str, relay: str) -> str:
    """The TwiML's stream URL with the scheme and host of the relay we were told to
    reach (the TwiML names the public address; a rehearsal may go round it)."""
    stream = urlsplit(stream_url)
    base = urlsplit(ws_base(relay))
    return urlunsplit(stream._replace(scheme=base.scheme, netloc=base.netloc))


def read_twiml(body: bytes) -> tuple[str, dict[str, str]]:
    """The `<Connect><Stream url>` and its `<Parameter>`s of a voice webhook's answer;
    raises `CallerFailed` when it has none."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise CallerFailed("voice webhook: not TwiML") from None
    stream = root.find("./Connect/Stream")
    url = stream.get("url") if stream is not None else None
    if stream is None or not url:
        raise CallerFailed("voice webhook: no <Connect><Stream url>")
    params = {
        p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter") if p.get("name")
    }
    return url, params


class Crowd:
    """One run: the session, the clock, the tally and the callers' coroutines."""

    def __init__(
        self,
        options: Options,
        session: aiohttp.ClientSession,
        tally: Tally,
        stop: asyncio.Event,
        seed: int,
        say: Callable[[str], None] = lambda line: None,
        numbers: Sequence[str] | None = None,
    ) -> None:
        self.options = options
        self.say = say
        self._hinted: set[str] = set()
        self.session = session
        self.tally = tally
        self.stop = stop
        self.t0 = self.now()
        self.numbers = (
            list(numbers)
            if numbers is not None
            else fake_numbers(options.callers, random.Random(seed ^ 0x5EED))
        )
        self.in_call = 0
        self.media_lag = 0.0
        self.ari: FakeAri | None = None
        self.ari_lock = asyncio.Lock()
        self._tones: dict[str, list[str]] = {}

    def now(self) -> float:
        # Not loop.time(): uvloop's is cached per loop turn, in whole milliseconds.
        return time.monotonic()

    async def sleep_until(self, when: float) -> bool:
        """Sleep until `when` (time.monotonic()); False when the crowd is being stopped."""
        while not self.stop.is_set():
            delay = when - self.now()
            if delay <= 0:
                return True
            await asyncio.sleep(min(delay, 0.25))
        return False

    async def play(self, plan: CallerPlan) -> None:
        if not await self.sleep_until(self.t0 + plan.start):
            return
        via = self.options.via
        self.in_call += 1
        try:
            if via == "ws":
                await self.keypad(plan)
            elif via == "ari":
                await self.ari_call(plan)
            else:
                await self.twilio_call(plan, audio=via == "twilio-audio")
        except CallerFailed as exc:
            self.tally.fail(plan.index, exc.kind)
            self.hint(exc.kind)
        except aiohttp.WSServerHandshakeError as exc:
            self.tally.fail(plan.index, f"stream refused ({exc.status})")
        except (aiohttp.ClientError, OSError) as exc:
            self.tally.fail(plan.index, f"connection failed ({type(exc).__name__})")
        except TimeoutError:
            self.tally.fail(plan.index, "timed out")
        except Exception:  # our bug: show it, let the others play on
            log.exception("caller %d failed", plan.index)
            self.tally.fail(plan.index, "crowd bug (see the log)")
        finally:
            self.in_call -= 1

    def hint(self, kind: str) -> None:
        """Once per run, what to check when a caller fails this way."""
        o = self.options
        hints = {
            "voice webhook refused (403: signature)": (
                "the relay refused the webhook's X-Twilio-Signature: is --twilio-token its "
                f"[twilio] auth_token, and {o.public_url or o.relay!r} (--public-url) its "
                "public_url?"
            ),
            "voice webhook answered 404": "the relay has no /twilio/voice: is [twilio] configured?",
            "session refused (429 rate_limited)": (
                "the relay gives one address at most [relay] sessions_per_minute new keypad "
                "sessions (default 120): raise it for a rehearsal crowd from one machine"
            ),
        }
        text = hints.get(kind)
        if text and kind not in self._hinted:
            self._hinted.add(kind)
            self.say(text)

    async def read_replies(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read what the relay says to a caller (errors are counted); reading also
        answers the relay's heartbeat pings."""
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            with contextlib.suppress(orjson.JSONDecodeError):
                obj = orjson.loads(msg.data)
                for item in obj if isinstance(obj, list) else [obj]:
                    if isinstance(item, dict) and item.get("type") == "error":
                        self.tally.error(f"relay error {item.get('code')}")

    # -- ws: a browser keypad --

    async def keypad(self, plan: CallerPlan) -> None:
        o = self.options
        # keypad.js: a caller session from the relay first; the relay stamps its caller
        # on everything the socket publishes.
        async with self.session.post(
            o.relay.rstrip("/") + "/session", json={"channel": o.channel}
        ) as resp:
            answer = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(answer, dict):
                code = answer.get("code") if isinstance(answer, dict) else None
                raise CallerFailed(f"session refused ({resp.status} {code})")
        token, caller = str(answer["session"]), str(answer["caller"])
        log_ = self.tally.add_caller(caller, plan.index)
        ws = await self.session.ws_connect(ws_base(o.relay) + "/ws", autoping=True)
        reader = asyncio.create_task(self.read_replies(ws))
        try:

            async def publish(data: dict[str, Any]) -> None:
                frame = {"type": "publisher", "id": o.channel, "session": token, "data": data}
                await ws.send_str(orjson.dumps(frame).decode())

            # keypad.js: subscribe to CHANNEL:state before joining, so the billboard's
            # answer to the join reaches the caller.
            state = o.channel + protocol.STATE_SUFFIX
            if protocol.valid_channel(state):
                frame = {"type": "subscriber", "id": state, "v": 2}
                await ws.send_str(orjson.dumps(frame).decode())
            await publish({"event": "join", "source": "web", "nick": None})
            began = self.now()
            for press in plan.presses:
                if not await self.sleep_until(began + press.at):
                    break
                if ws.closed:
                    raise CallerFailed("keypad socket closed by the relay")
                self.tally.sent(caller, press.key, self.now())
                await publish({"event": "digit", "digit": press.key, "source": "web"})
            await self.sleep_until(began + plan.hang_up)
            # keypad.js on pagehide: a best-effort leave, then the socket goes.
            await publish({"event": "leave", "reason": "closed"})
            log_.ended = True
        finally:
            await close_with_reader(ws, reader)

    # -- twilio: a phone through Twilio Media Streams --

    def _signed(self, url: str, params: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
        from ..gateways.twilio import SIGNATURE_HEADER, compute_signature

        token = self.options.twilio_token
        return {SIGNATURE_HEADER: compute_signature(token, url, params)} if token else {}

    def tone_frames(self, key: str) -> list[str]:
        """A press as the phone's audio: base64 20 ms μ-law frames of the key's tone."""
        frames = self._tones.get(key)
        if frames is None:
            from ..gateways.dtmf import dtmf_tone, ulaw_encode

            ulaw = ulaw_encode(dtmf_tone(key, TONE_MS))
            frames = [
                base64.b64encode(ulaw[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")).decode()
                for i in range(0, len(ulaw), FRAME_BYTES)
            ]
            self._tones[key] = frames
        return frames

    async def twilio_call(self, plan: CallerPlan, audio: bool) -> None:
        o = self.options
        number = self.numbers[plan.index]
        call_sid = "CA" + secrets.token_hex(16)
        stream_sid = "MZ" + secrets.token_hex(16)
        # The voice webhook's form, as Twilio posts it for an incoming call.
        form = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "ringing",
            "Called": TO_NUMBER,
            "Caller": number,
            "Direction": "inbound",
            "From": number,
            "FromCountry": "US",
            "To": TO_NUMBER,
        }
        public = (o.public_url or o.relay).rstrip("/")
        headers = self._signed(public + "/twilio/voice", form.items())
        async with self.session.post(
            o.relay.rstrip("/") + "/twilio/voice", data=form, headers=headers
        ) as resp:
            body = await resp.read()
            if resp.status == 403:
                raise CallerFailed("voice webhook refused (403: signature)")
            if resp.status != 200:
                raise CallerFailed(f"voice webhook answered {resp.status}")
        stream_url, params = read_twiml(body)
        caller = params.get("caller")
        if not caller:
            raise CallerFailed('voice webhook: no <Parameter name="caller">')
        log_ = self.tally.add_caller(caller, plan.index)
        # Twilio signs the upgrade over the TwiML's wss:// URL, with no parameters.
        ws = await self.session.ws_connect(
            on_relay(stream_url, o.relay), headers=self._signed(stream_url), autoping=True
        )
        reader = asyncio.create_task(self.read_replies(ws))
        seq = 0

        async def send(msg: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            msg["sequenceNumber"] = str(seq)
            msg["streamSid"] = stream_sid
            await ws.send_str(orjson.dumps(msg).decode())

        try:
            await ws.send_str(
                orjson.dumps(
                    {"event": "connected", "protocol": "Call", "version": "1.0.0"}
                ).decode()
            )
            await send(
                {
                    "event": "start",
                    "start": {
                        "streamSid": stream_sid,
                        "accountSid": ACCOUNT_SID,
                        "callSid": call_sid,
                        "tracks": ["inbound"],
                        "customParameters": params,
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": 8000,
                            "channels": 1,
                        },
                    },
                }
            )
            began = self.now()
            presses = deque(plan.presses)
            tone: deque[str] = deque()
            chunk = 0
            # Twilio sends a frame every 20 ms, in real time; a press rides between
            # frames as a `dtmf` message, or (audio) as the next frames' sound.
            while (chunk * FRAME_S < plan.hang_up or tone) and not self.stop.is_set():
                due = began + chunk * FRAME_S
                await self.sleep_until(due)
                late = self.now() - due
                if late > self.media_lag:
                    self.media_lag = late
                if ws.closed:
                    raise CallerFailed("stream closed by the relay")
                while presses and presses[0].at <= chunk * FRAME_S and not tone:
                    key = presses.popleft().key
                    self.tally.sent(caller, key, self.now())
                    if audio:
                        tone.extend(self.tone_frames(key))
                    else:
                        await send(
                            {
                                "event": "dtmf",
                                "dtmf": {"track": "inbound_track", "digit": key},
                            }
                        )
                payload = tone.popleft() if tone else SILENCE_B64
                await send(
                    {
                        "event": "media",
                        "media": {
                            "track": "inbound",
                            "chunk": str(chunk + 1),
                            "timestamp": str(chunk * 20),
                            "payload": payload,
                        },
                    }
                )
                chunk += 1
            await send({"event": "stop", "stop": {"accountSid": ACCOUNT_SID, "callSid": call_sid}})
            log_.ended = True
        finally:
            await close_with_reader(ws, reader)

    # -- ari: a phone through Asterisk --

    async def ari_call(self, plan: CallerPlan) -> None:
        ari = self.ari
        assert ari is not None
        number = self.numbers[plan.index]
        async with self.ari_lock:
            # One call start at a time: the next ARI join on the channel is this call's.
            self.tally.joins_to_claim.clear()
            channel_id = await ari.call(number)
            try:
                caller = await self.claim_join() if self.options.check else f"ari-{plan.index}"
            except CallerFailed:
                await ari.hang_up(channel_id)  # leave no call behind on the relay
                raise
        log_ = self.tally.add_caller(caller, plan.index)
        if self.options.check:
            log_.joins += 1  # the join that was claimed
        try:
            await ari.answered(channel_id, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise CallerFailed("ari: the relay never answered the channel") from None
        began = self.now()
        try:
            for press in plan.presses:
                if not await self.sleep_until(began + press.at):
                    break
                self.tally.sent(caller, press.key, self.now())
                await ari.press(channel_id, press.key, duration_ms=ARI_PRESS_MS)
            await self.sleep_until(began + plan.hang_up)
        finally:
            await ari.hang_up(channel_id)
            log_.ended = True

    async def claim_join(self) -> str:
        deadline = self.now() + ARI_JOIN_TIMEOUT_S
        while not self.tally.joins_to_claim:
            self.tally.changed.clear()
            left = deadline - self.now()
            if left <= 0:
                raise CallerFailed("ari: no join on the channel for the call")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.tally.changed.wait(), left)
        return self.tally.joins_to_claim.popleft()[0]


class Checker:
    """A v2 subscriber on the channel, as a billboard is (no token needed on a plain
    channel), feeding every event to the tally. A dropped connection is resumed from
    the last seq it saw, so the relay's history fills the hole."""

    def __init__(self, crowd_relay: str, channel: str, session: aiohttp.ClientSession) -> None:
        self.url = ws_base(crowd_relay) + "/ws"
        self.channel = channel
        self.session = session
        self.seq: int | None = None
        self.epoch: str | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None
        self.closing = False

    async def start(self, tally: Tally) -> None:
        await self._connect()
        self.task = asyncio.create_task(self._run(tally))

    async def _connect(self) -> None:
        ws = await self.session.ws_connect(self.url, autoping=True, max_msg_size=0)
        frame: dict[str, Any] = {"type": "subscriber", "id": self.channel, "v": 2}
        if self.seq is not None:
            frame |= {"since": self.seq, "epoch": self.epoch}
        await ws.send_str(orjson.dumps(frame).decode())
        msg = await ws.receive(timeout=CONNECT_TIMEOUT_S)
        reply = orjson.loads(msg.data) if msg.type is aiohttp.WSMsgType.TEXT else None
        if not isinstance(reply, dict) or reply.get("type") != "subscribed":
            await ws.close()
            raise CallerFailed(f"subscriber: the relay answered {str(reply)[:80]}")
        if self.seq is None:
            self.seq = reply.get("seq")
        self.epoch = reply.get("epoch")
        self.ws = ws

    async def _run(self, tally: Tally) -> None:
        while True:
            ws = self.ws
            assert ws is not None
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    continue
                now = time.monotonic()
                try:
                    obj = orjson.loads(msg.data)
                except orjson.JSONDecodeError:
                    tally.error("subscriber got a frame that is not JSON")
                    continue
                for item in obj if isinstance(obj, list) else [obj]:
                    kind = item.get("type") if isinstance(item, dict) else None
                    if kind == "event":
                        self.seq = item.get("seq", self.seq)
                        tally.seen(item.get("data"), now)
                    elif kind == "gap":
                        tally.error("subscriber gap (events dropped)", 1)
                    elif kind == "error":
                        tally.error(f"subscriber error {item.get('code')}")
            if self.closing:
                return
            tally.error("subscriber reconnected")
            for attempt in range(5):
                await asyncio.sleep(0.2 * (attempt + 1))
                try:
                    await self._connect()
                    break
                except (aiohttp.ClientError, OSError, TimeoutError, CallerFailed):
                    continue
            else:
                tally.error("subscriber lost")
                return

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.task, 2.0)


async def run_crowd(
    options: Options,
    say: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    *,
    plans: Sequence[CallerPlan] | None = None,
    numbers: Sequence[str] | None = None,
) -> Report:
    """Play the crowd against the relay and return the report. `say` gets progress
    lines (None: quiet); setting `stop` ends every call early (the report says so).
    Raises `UsageError` for bad options; a relay that cannot be reached is a report
    whose callers failed, never an exception.

    By default the callers follow `plan_crowd`; a longer rehearsal (bench/soak.py runs
    one crowd per path at once) may give its own `plans` (one per caller, indexed
    0…callers-1: callers coming and going, phrases and pauses) and the phone `numbers`
    its callers dial from (so that crowds on several paths use distinct numbers)."""
    validate(options)
    say = say or (lambda line: None)
    stop = stop or asyncio.Event()
    seed = options.seed if options.seed is not None else secrets.randbelow(2**31)
    if plans is None:
        plans, ramp = plan_crowd(options, seed), options.ramp
    elif sorted(p.index for p in plans) == list(range(options.callers)):
        ramp = max(p.start for p in plans)
    else:
        raise UsageError(f"plans must number the {options.callers} callers 0…{options.callers - 1}")
    if numbers is not None and len(numbers) < options.callers:
        raise UsageError(f"{len(numbers)} numbers for {options.callers} callers")
    tally = Tally(claim_source="ari" if options.via == "ari" else None)
    loop = asyncio.get_running_loop()
    began = loop.time()
    connector = aiohttp.TCPConnector(limit=0)  # every caller is its own connection
    timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_S, sock_read=None)
    crowd: Crowd | None = None

    def report() -> Report:
        r = tally.report(options, seed, plans)
        r.elapsed_s = loop.time() - began
        r.interrupted = stop.is_set()
        if crowd is not None and options.via.startswith("twilio"):
            r.media_lag_max_ms = crowd.media_lag * 1000
        return r

    def fail_all(kind: str) -> Report:
        for plan in plans:
            tally.fail(plan.index, kind)
        return report()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        checker: Checker | None = None
        if options.check:
            checker = Checker(options.relay, options.channel, session)
            try:
                await checker.start(tally)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                say(f"cannot subscribe to {options.channel} on {options.relay}: {exc}")
                return fail_all("relay unreachable")
            except CallerFailed as exc:
                say(exc.kind)
                return fail_all("subscribe refused")
        crowd = Crowd(options, session, tally, stop, seed, say, numbers)
        try:
            if options.via == "ari":
                ready = await start_ari(crowd, say)
                if not ready:
                    return fail_all("no ARI client")
            crowd.t0 = crowd.now()
            presses = [len(p.presses) for p in plans]
            each = (
                f"{presses[0]} presses each"
                if min(presses) == max(presses)
                else f"{sum(presses)} presses in all"
            )
            say(
                f"{options.callers} callers via {options.via} → {options.relay}, channel "
                f"{options.channel}: {each} over {options.duration:g} s, starts spread "
                f"over {ramp:g} s"
            )
            callers = [asyncio.create_task(crowd.play(plan)) for plan in plans]
            progress = asyncio.create_task(show_progress(crowd, say))
            await asyncio.gather(*callers)
            progress.cancel()
            if checker is not None:
                # The last presses and leaves are still on their way; stopped, wait less.
                drain = min(options.drain, 1.0) if stop.is_set() else options.drain
                deadline = loop.time() + drain
                while not tally.settled() and loop.time() < deadline:
                    await asyncio.sleep(0.02)
        finally:
            if checker is not None:
                await checker.close()
            if crowd.ari is not None:
                await crowd.ari.close()
    return report()


async def start_ari(crowd: Crowd, say: Callable[[str], None]) -> bool:
    """Start the Asterisk stand-in and wait for the relay's ARI client to connect."""
    host, port = crowd.options.ari_listen
    ari = make_fake_ari(crowd.options)
    try:
        base = await ari.start(host, port)
    except OSError as exc:
        say(f"cannot listen on {host}:{port} for the relay's ARI client: {exc.strerror}")
        return False
    crowd.ari = ari
    say(
        f"point the relay's [ari] url at {base} (app {crowd.options.ari_app}, user "
        f"{crowd.options.ari_username or '(none)'}) and restart it (a relay already "
        "pointed there connects by itself)"
    )
    wait = crowd.options.ari_wait
    say(f"waiting up to {wait:g} s for the relay's ARI client to connect …")
    try:
        await ari.wait_client(wait)
    except TimeoutError:
        say(f"no ARI client connected to {base} within {wait:g} s: is the relay's [ari] url it?")
        return False
    say("the relay's ARI client is connected")
    return True


async def show_progress(crowd: Crowd, say: Callable[[str], None]) -> None:
    while True:
        await asyncio.sleep(PROGRESS_EVERY_S)
        sent, seen = crowd.tally.counts()
        failed = len(crowd.tally.failed)
        checked = f", {seen} seen" if crowd.options.check else ""
        say(
            f"  {crowd.now() - crowd.t0:4.0f} s: {crowd.in_call} in a call, {failed} failed, "
            f"{sent} presses sent{checked}"
        )


# -- the command line ------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own: one line, not the usage
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m relay.rehearsal",
        description="The rehearsal crowd: simulated callers play a running relay through "
        "one ingress path while a subscriber checks that every key press arrives.",
        epilog="Paths: ws = browser keypads on /ws; twilio = the signed voice webhook, then a "
        "Media Stream with 20 ms silence frames and dtmf messages; twilio-audio = the same "
        "with each key as a tone in the audio (the relay's in-band detector); ari = a fake "
        "Asterisk the relay's [ari] client connects to. "
        "Exit status: 0 every caller got through and every press arrived once, in "
        "order; 1 otherwise; 2 a bad option. Ctrl-C hangs everyone up and reports.",
    )
    p.add_argument(
        "--callers",
        type=int,
        default=8,
        help=f"concurrent callers (default 8, at most {MAX_CALLERS})",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=2.0,
        help="key presses a second per caller (default 2). --via ws: keep it below the "
        "relay's limit for peers without a token (20 frames a second, burst 40): a "
        "keypad's presses above it are refused. --via twilio-audio: at most 6",
    )
    p.add_argument(
        "--duration", type=float, default=20.0, help="seconds each caller plays (default 20)"
    )
    p.add_argument(
        "--ramp",
        type=float,
        default=2.0,
        help="callers join spread over this many seconds (default 2)",
    )
    p.add_argument("--via", default="ws", choices=VIAS, help="the ingress path (default ws)")
    p.add_argument(
        "--relay",
        help="the running relay (default: [relay] public_url of --config, "
        "DIALJAM_PUBLIC_URL, else http://127.0.0.1:PORT)",
    )
    p.add_argument("--channel", help="the channel to play (default: the config's, or dialjam)")
    p.add_argument(
        "--config",
        help="the installation's TOML file: [relay] channel, public_url, rate, [twilio] "
        "auth_token and channel, [ari] url and channel (default DIALJAM_CONFIG)",
    )
    p.add_argument(
        "--public-url",
        help="the relay's public_url, which Twilio signs (default: the config's, else --relay)",
    )
    p.add_argument(
        "--twilio-token", help="Twilio's auth token, to sign webhooks (overrides the config)"
    )
    p.add_argument(
        "--ari-listen",
        metavar="HOST:PORT",
        help="--via ari: where the fake Asterisk listens (default: the host and port of "
        "the config's [ari] url, else 127.0.0.1:8088)",
    )
    p.add_argument(
        "--ari-wait",
        type=float,
        default=60.0,
        help="--via ari: seconds to wait for the relay to connect (default 60)",
    )
    p.add_argument("--seed", type=int, help="the keys' random seed (default: random, printed)")
    p.add_argument("--no-check", action="store_true", help="do not subscribe and check arrival")
    p.add_argument(
        "--drain", type=float, default=3.0, help="seconds to wait for late events (default 3)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def parse_options(
    argv: Sequence[str] | None = None, env: dict[str, str] | None = None
) -> tuple[Options, bool]:
    """Options from the command line and the installation's config; (options, json).
    Raises `UsageError`."""
    args = build_parser().parse_args(argv)
    env = dict(os.environ) if env is None else env
    try:
        relay_cfg = load_config(args.config, env=env)
        twilio_cfg = load_twilio_config(args.config, env=env)
        ari_cfg = load_ari_config(args.config, env=env)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    listen = args.ari_listen
    if listen is None:
        ari_url = urlsplit(ari_cfg.url) if ari_cfg is not None else None
        listen = (
            f"{ari_url.hostname}:{ari_url.port or 8088}"
            if ari_url is not None and ari_url.hostname
            else "127.0.0.1:8088"
        )
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--ari-listen {listen!r} must be HOST:PORT")
    public = args.public_url or relay_cfg.public_url
    relay = args.relay or relay_cfg.public_url or f"http://127.0.0.1:{relay_cfg.port}"
    channel = args.channel
    if channel is None:
        # A gateway may have a channel of its own ([twilio] / [ari] channel).
        gateway = {"twilio": twilio_cfg, "twilio-audio": twilio_cfg, "ari": ari_cfg}.get(args.via)
        channel = gateway.channel_for(relay_cfg) if gateway is not None else relay_cfg.channel
    ari_user = (
        {"ari_app": ari_cfg.app, "ari_username": ari_cfg.username, "ari_password": ari_cfg.password}
        if ari_cfg is not None
        else {}
    )
    token = args.twilio_token
    if token is None:
        token = twilio_cfg.auth_token if twilio_cfg is not None else ""
    options = Options(
        callers=args.callers,
        rate=args.rate,
        duration=args.duration,
        ramp=args.ramp,
        via=args.via,
        relay=relay.rstrip("/"),
        channel=channel,
        public_url=public,
        twilio_token=token,
        ari_listen=(host.strip("[]"), int(port)),
        **ari_user,
        ari_wait=args.ari_wait,
        seed=args.seed,
        check=not args.no_check,
        drain=args.drain,
        relay_rate=relay_cfg.rate,
    )
    validate(options)
    return options, bool(args.json)


def raise_fd_limit(callers: int) -> None:
    """Each caller is a socket (two on one machine with the relay)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * callers + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(hard, want)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


async def _main(options: Options, as_json: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        print("stopping: every caller hangs up (Ctrl-C again to quit at once)", file=sys.stderr)
        stop.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    report = await run_crowd(
        options, say=lambda line: print(line, file=sys.stderr, flush=True), stop=stop
    )
    if as_json:
        print(json.dumps(dataclasses.asdict(report) | {"ok": report.ok}, indent=2))
    else:
        print(report.render())
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options, as_json = parse_options(argv)
    except UsageError as exc:
        print(f"python -m relay.rehearsal: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    raise_fd_limit(options.callers)
    try:
        from ..runtime import event_loop_factory

        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(_main(options, as_json))
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
