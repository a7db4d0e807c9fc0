#!/usr/bin/env python3
"""Soak: the whole installation, every ingress path at once, for half an hour.

    python bench/soak.py                   # the soak: 30 minutes (1800 s)
    python bench/soak.py --duration 300    # make bench
    python bench/soak.py --duration 60     # CI (tests/bench/test_soak.py)

It starts a real headless billboard (``python -m billboard --headless --no-sound``, its
relay embedded, on a free port of 127.0.0.1) with a config of its own: known operator,
billboard and publisher tokens, ``public_url`` on that port, a ``[twilio]`` table with
an auth token (webhooks and streams are signed) and an ``[ari]`` table pointing at the
fake Asterisk (relay/rehearsal/fake_ari.py, the real ARI wire format) that the ARI
crowd runs; it records the show (``--record``) and logs its input events
(``--log-events``). Then a crowd plays through every path at once, at human rates:

- the rehearsal crowd of relay/rehearsal/crowd.py, one per path: keypads (a caller session from
  POST /session, then ``publisher`` frames on /ws), Twilio (the signed voice webhook,
  then a Media Stream with ``dtmf`` messages), Twilio audio (each key a tone in the
  stream's audio, for the relay's in-band detector) and ARI (StasisStart,
  ChannelDtmfReceived, hang-up);
- seed publishers with the publisher token (``/ws?token=…``, as a 2010 script changes
  only its URL): ``{"caller_id": NUMBER, "command": KEY}`` frames with ``"ack": true``,
  each press sent once the last one's ack came (no ack within ACK_TIMEOUT_S ends the
  call); half of them end with a ``leave``, the others just go quiet (the billboard
  frees their track when they idle).

Each path keeps a few callers in a call at once (SLOTS: 14 in all, more than the eight
tracks, so some wait in line); a caller stays 20–120 s (a short run: 1/6 to 1/2 of
it), plays phrases of 3–10 presses 0.22–0.5 s apart with 1–6 s pauses, hangs up, and
another takes the slot a few seconds later.

What it measures, and the checks (exit 0 when all hold, 1 otherwise, naming them):

- presses sent / acknowledged / arrived per path. Arrivals are counted by v2
  subscribers on the installation channel: each crowd's own (relay.rehearsal.crowd's check,
  per caller, in order) and one for the seed publishers, which finds each
  acknowledged press by the ``seq`` of its ack. Every press must arrive once and in
  order, every caller get through, and no acknowledged press be lost;
- errors: the crowds' (refused calls, relay error frames, subscriber gaps, unanswered
  acks) and the relay's /healthz ``errors`` and subscriber drops at the end beyond
  EXPECTED_RELAY_ERRORS: the relay's ARI client cannot reach the fake Asterisk before
  its crowd starts it and after it stops with the crowd (``ari_unreachable``,
  ``ari_dropped``); while it serves, the link must hold (one ARI connection in all);
- the billboard's resident memory (VmRSS), sampled every SAMPLE_EVERY_S: at the start,
  after the warm-up (a third of the run, 20–300 s: the relay's bounded histories fill
  in the first minutes), at the end, and the highest. Memory is flat when the growth
  from after the warm-up to the end is under 20 MiB (printed also as the
  ratio end / after warm-up), with the least-squares trend in MiB an hour beside it.
  Some growth is the show being kept: the recording holds every note (some 20 notes a
  second with this crowd), so the notes recorded after the warm-up are printed beside
  it, with the growth per note;
- stuck notes: the recording, read back with mido, has a note_off for every note_on
  (per track, channel and key);
- the billboard's stderr holds no ``Traceback`` and no ``ERROR`` line, and it exits 0;
- privacy: the event log, the events the seed subscriber saw and the billboard's stderr
  hold no run of five digits or more from the phone numbers the crowd called from
  (stderr's Twilio call ids and Asterisk channel ids, NOT_NUMBERS, set aside first:
  32 random hex digits hold such runs by chance).

Linux only (/proc). It needs nothing beyond the project's packages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import aiohttp
import mido
import orjson

from bench.procs import free_port, rss_kib, tail
from bench.stats import ROOT
from bench.wsclient import HOST
from relay.rehearsal.crowd import (
    KEYPAD_KEYS,
    CallerPlan,
    Options,
    Press,
    Report,
    fake_numbers,
    percentile,
    run_crowd,
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


# -- the seed publishers and their subscriber ------------------------------------------


@dataclass
class SeedPress:
    key: str
    sent: float
    seq: int | None = None  # from the ack
    error: str | None = None


@dataclass
class SeedBooks:
    presses: list[SeedPress] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    failed: int = 0


class Arrivals:
    """A v2 subscriber on the installation channel: the seed form's digits by seq, the
    digits of every path by source, and any number-looking text in what it saw. A
    dropped connection resumes from the last seq (the relay's history fills in)."""

    def __init__(self, url: str, windows: set[str]) -> None:
        self.url = url
        self.windows = windows
        self.seed_digits: dict[int, tuple[str, float]] = {}  # seq → (key, when seen)
        self.digits_by_source: Counter[str] = Counter()
        self.events = 0
        self.leaks: list[str] = []
        self.errors: Counter[str] = Counter()
        self.seq: int | None = None
        self.epoch: str | None = None
        self.closing = False
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self, session: aiohttp.ClientSession) -> None:
        ws = await session.ws_connect(self.url, max_msg_size=0)
        frame: dict[str, Any] = {"type": "subscriber", "id": CHANNEL, "v": 2}
        if self.seq is not None:
            frame |= {"since": self.seq, "epoch": self.epoch}
        await ws.send_str(orjson.dumps(frame).decode())
        reply = orjson.loads((await ws.receive(timeout=10)).data)
        if not isinstance(reply, dict) or reply.get("type") != "subscribed":
            raise RuntimeError(f"subscribe refused: {str(reply)[:120]}")
        if self.seq is None:
            self.seq = reply.get("seq")
        self.epoch = reply.get("epoch")
        self.ws = ws

    async def run(self, session: aiohttp.ClientSession) -> None:
        while True:
            ws = self.ws
            assert ws is not None
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self.read(orjson.loads(msg.data))
            if self.closing:
                return
            self.errors["seed subscriber reconnected"] += 1
            await asyncio.sleep(0.5)
            await self.connect(session)

    def read(self, obj: Any) -> None:
        for item in obj if isinstance(obj, list) else [obj]:
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind == "gap":
                self.errors["seed subscriber gap"] += 1
            elif kind == "error":
                self.errors[f"seed subscriber error {item.get('code')}"] += 1
            if kind != "event":
                continue
            self.events += 1
            self.seq = item.get("seq", self.seq)
            data = item.get("data")
            if not isinstance(data, dict):
                continue
            self.leaks += leaked_runs(data, self.windows)
            if "caller_id" in data and "command" in data and isinstance(item.get("seq"), int):
                self.seed_digits[item["seq"]] = (str(data["command"]), time.monotonic())
                self.digits_by_source["seed"] += 1
            elif data.get("event") == "digit":
                self.digits_by_source[str(data.get("source"))] += 1

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()


async def seed_call(
    session: aiohttp.ClientSession,
    url: str,
    plan: CallerPlan,
    number: str,
    t0: float,
    books: SeedBooks,
    stop: asyncio.Event,
) -> None:
    """One call through a seed-era publisher: a socket of its own, the 2010 digit form
    with an ack asked for each press, then (every other caller) a leave."""
    if not await sleep_until(t0 + plan.start, stop):
        return
    try:
        ws = await session.ws_connect(url)
    except (aiohttp.ClientError, OSError) as exc:
        books.failed += 1
        books.errors[f"seed publisher could not connect ({type(exc).__name__})"] += 1
        return

    async def send(data: dict[str, Any]) -> dict[str, Any] | None:
        frame = {"type": "publisher", "id": CHANNEL, "data": data, "ack": True}
        await ws.send_str(orjson.dumps(frame).decode())
        # Replies come in order and one press waits for the last one's: the next
        # reply is this frame's.
        try:
            msg = await ws.receive(timeout=ACK_TIMEOUT_S)
        except TimeoutError:
            return None
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return {"type": "closed"}
        reply = orjson.loads(msg.data)
        return reply if isinstance(reply, dict) else {"type": "not an object"}

    try:
        began = time.monotonic()
        for press in plan.presses:
            if not await sleep_until(began + press.at, stop) or ws.closed:
                break
            entry = SeedPress(press.key, time.monotonic())
            books.presses.append(entry)
            reply = await send({"caller_id": number, "command": press.key})
            if reply is None:
                # A late ack would be taken for the next frame's: this call ends here.
                books.errors[f"seed press not acknowledged within {ACK_TIMEOUT_S:g} s"] += 1
                return
            if reply.get("type") == "ack" and isinstance(reply.get("seq"), int):
                entry.seq = reply["seq"]
            else:
                entry.error = f"answered {reply.get('type')} {reply.get('code', '')}".strip()
            if entry.error:
                books.errors[f"seed press {entry.error}"] += 1
        await sleep_until(began + plan.hang_up, stop)
        if plan.index % 2 == 0 and not ws.closed:
            reply = await send({"event": "leave", "caller": number, "reason": "hangup"})
            if reply is None or reply.get("type") != "ack":
                books.errors["seed leave not acknowledged"] += 1
    finally:
        await ws.close()


async def sleep_until(when: float, stop: asyncio.Event) -> bool:
    """Sleep until `when` (time.monotonic()); False when the soak is being stopped."""
    while not stop.is_set():
        delay = when - time.monotonic()
        if delay <= 0:
            return True
        await asyncio.sleep(min(delay, 0.25))
    return False


# -- the billboard process -------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    port: int
    ari_port: int
    operator_token: str
    billboard_token: str
    publisher_token: str
    twilio_token: str
    ari_user: str
    ari_password: str

    @property
    def relay(self) -> str:
        return f"http://{HOST}:{self.port}"

    def toml(self) -> str:
        return f"""\
[relay]
channel = "{CHANNEL}"
public_url = "{self.relay}"
operator_token = "{self.operator_token}"
billboard_token = "{self.billboard_token}"
publisher_token = "{self.publisher_token}"

[billboard]
phone = "+1 555 010 0100"

[twilio]
auth_token = "{self.twilio_token}"

[ari]
url = "http://{HOST}:{self.ari_port}"
app = "dialjam"
username = "{self.ari_user}"
password = "{self.ari_password}"
reconnect_max_s = 1.0
"""


def new_setup() -> Setup:
    return Setup(
        port=free_port(),
        ari_port=free_port(),
        operator_token="soak-operator-" + secrets.token_hex(8),
        billboard_token="soak-billboard-" + secrets.token_hex(8),
        publisher_token="soak-publisher-" + secrets.token_hex(8),
        twilio_token=secrets.token_hex(16),
        ari_user="asterisk",
        ari_password=secrets.token_hex(8),
    )


def billboard_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALJAM_")}
    path = env.get("PYTHONPATH")
    env.update(
        PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""),  # this checkout's code
        SDL_VIDEODRIVER="dummy",
        SDL_AUDIODRIVER="dummy",
        PYTHONUNBUFFERED="1",
    )
    return env


async def wait_ready(relay: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the relay answers /healthz with the billboard subscribed."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the billboard exited with {proc.returncode} at start")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with session.get(relay + "/healthz", timeout=aiohttp.ClientTimeout(2)) as r:
                    if (await r.json()).get("billboard", {}).get("subscribed"):
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the billboard was not ready within {timeout:g} s")


async def fetch_health(relay: str) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(relay + "/healthz") as r,
    ):
        health: dict[str, Any] = await r.json()
        return health


def stop_billboard(proc: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM (the operator's stop: every note off, the recording written), then a
    kill if it lingers; returns its exit status (None: it had to be killed)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            return None
    return proc.returncode


# -- memory ----------------------------------------------------------------------------


@dataclass
class Memory:
    samples: list[tuple[float, float]] = field(default_factory=list)  # (s, MiB)
    peak_hwm_mib: float = 0.0

    def sample(self, pid: int, t: float) -> None:
        with contextlib.suppress(OSError, KeyError):
            figures = rss_kib(pid)
            self.samples.append((t, figures["VmRSS"] / 1024))
            self.peak_hwm_mib = max(self.peak_hwm_mib, figures["VmHWM"] / 1024)

    def at(self, t: float) -> float:
        """The first sample at or after `t` seconds (the last one if none)."""
        return next((mib for s, mib in self.samples if s >= t), self.samples[-1][1])

    def slope_mib_per_h(self, after: float) -> float | None:
        """Least-squares growth of the samples after `after` seconds, MiB an hour."""
        points = [(s, mib) for s, mib in self.samples if s >= after]
        if len(points) < 3:
            return None
        n = len(points)
        mean_s = sum(s for s, _ in points) / n
        mean_m = sum(m for _, m in points) / n
        var = sum((s - mean_s) ** 2 for s, _ in points)
        cov = sum((s - mean_s) * (m - mean_m) for s, m in points)
        return 3600 * cov / var if var else None


async def sample_memory(pid: int, memory: Memory, t0: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        memory.sample(pid, time.monotonic() - t0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)


# -- after the show --------------------------------------------------------------------


@dataclass
class Notes:
    played: int = 0
    tracks: int = 0
    stuck: int = 0  # note_on never followed by its note_off
    stray_offs: int = 0  # note_off with no note sounding on that key
    longest_s: float = 0.0
    after: int = 0  # notes struck from `after_s` on
    error: str | None = None


def read_recording(path: Path, after_s: float) -> Notes:
    """Every note_on of the file against its note_off, per track, channel and key."""
    out = Notes()
    try:
        midi = mido.MidiFile(path)
    except (OSError, ValueError, EOFError) as exc:
        out.error = f"cannot read {path.name}: {exc}"
        return out
    tempo = 500_000
    for track in midi.tracks:
        for msg in track:
            if msg.type == "set_tempo":
                tempo = msg.tempo
                break
    after = mido.second2tick(after_s, midi.ticks_per_beat, tempo)
    for track in midi.tracks:
        tick = 0
        sounding: dict[tuple[int, int], list[int]] = {}
        notes = 0
        for msg in track:
            tick += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                sounding.setdefault((msg.channel, msg.note), []).append(tick)
                notes += 1
                out.after += tick >= after
            elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
                started = sounding.get((msg.channel, msg.note))
                if started:
                    held = mido.tick2second(tick - started.pop(0), midi.ticks_per_beat, tempo)
                    out.longest_s = max(out.longest_s, held)
                else:
                    out.stray_offs += 1
        out.stuck += sum(len(ticks) for ticks in sounding.values())
        out.played += notes
        out.tracks += notes > 0
    return out


@dataclass
class EventLogFigures:
    events: int = 0
    unreadable: int = 0
    leaks: list[str] = field(default_factory=list)


def read_event_log(path: Path, windows: set[str]) -> EventLogFigures:
    out = EventLogFigures()
    if not path.exists():
        return out
    with path.open("rb") as f:
        for raw in f:
            if not raw.strip():
                continue
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                out.unreadable += 1
                continue
            out.events += 1
            out.leaks += leaked_runs(line, windows)
    return out


# Identifiers the relay logs that are not numbers but hold digit runs of their own:
# Twilio's CallSid and StreamSid (two letters, 32 hex digits), an Asterisk channel id
# (the Unix time of its start, a dot, a count).
NOT_NUMBERS = re.compile(r"\b[A-Z]{2}[0-9a-f]{32}\b|\b\d{10}\.\d+\b")


def stderr_problems(text: str, windows: set[str]) -> tuple[list[str], int, list[str]]:
    """(Traceback and ERROR lines, WARNING lines counted, number runs found)."""
    bad = [line for line in text.splitlines() if "Traceback" in line or " ERROR " in line]
    warnings = sum(" WARNING " in line for line in text.splitlines())
    return bad, warnings, leaked_runs(NOT_NUMBERS.sub("", text), windows)


# -- the run ---------------------------------------------------------------------------


@dataclass
class PathFigures:
    """One ingress path's figures for the table."""

    name: str
    callers: int = 0
    failed: int = 0
    sent: int = 0
    acked: int | None = None
    arrived: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class Soak:
    duration: float
    warmup: float
    seed: int
    paths: list[PathFigures] = field(default_factory=list)
    lost_acked: int = 0
    memory: Memory = field(default_factory=Memory)
    health: dict[str, Any] = field(default_factory=dict)
    notes: Notes = field(default_factory=Notes)
    eventlog: EventLogFigures = field(default_factory=EventLogFigures)
    wire_leaks: list[str] = field(default_factory=list)
    stderr_bad: list[str] = field(default_factory=list)
    stderr_warnings: int = 0
    stderr_leaks: list[str] = field(default_factory=list)
    exit_status: int | None = None
    numbers: int = 0
    windows: set[str] = field(default_factory=set)  # DIGIT_RUN digits of every number
    billboard_started: float = 0.0  # time.monotonic()
    crowd_began_s: float = 0.0  # after the billboard was started
    failure: str | None = None  # the run itself could not happen
    elapsed_s: float = 0.0


def from_report(path: str, report: Report) -> PathFigures:
    return PathFigures(
        name=path,
        callers=report.callers,
        failed=report.callers_failed,
        sent=report.presses_sent,
        arrived=report.presses_seen,
        lost=report.lost,
        duplicated=report.duplicated,
        out_of_order=report.out_of_order,
        p50_ms=report.latency_p50_ms,
        p99_ms=report.latency_p99_ms,
        errors=dict(report.errors),
        problems=[] if report.ok else report.problems(),
    )


def from_seed(books: SeedBooks, arrivals: Arrivals, plans: int) -> tuple[PathFigures, int]:
    """The seed path's figures and the acknowledged presses that never arrived."""
    acked = [p for p in books.presses if p.seq is not None]
    latencies: list[float] = []
    for press in acked:
        seen = arrivals.seed_digits.get(press.seq or -1)
        if seen is not None and seen[0] == press.key:
            latencies.append(1000 * (seen[1] - press.sent))
    latencies.sort()
    row = PathFigures(
        name="seed",
        callers=plans,
        failed=books.failed,
        sent=len(books.presses),
        acked=len(acked),
        arrived=len(latencies),
        lost=len(acked) - len(latencies),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        errors=dict(books.errors),
    )
    if row.lost:
        row.problems.append(f"{row.lost} acknowledged presses never arrived")
    return row, row.lost


async def play(
    setup: Setup, soak: Soak, proc: subprocess.Popen[bytes], stop: asyncio.Event
) -> None:
    rng = random.Random(soak.seed)
    plans = {path: soak_plans(soak.duration, SLOTS[path], rng) for path in PATHS}
    # Distinct made-up numbers for every caller of every path (555: no real area code).
    total = sum(len(p) for p in plans.values())
    pool = fake_numbers(total, random.Random(soak.seed ^ 0x50A))
    numbers: dict[str, list[str]] = {}
    for path in PATHS:
        numbers[path], pool = pool[: len(plans[path])], pool[len(plans[path]) :]
    soak.numbers = total
    soak.windows = windows = digit_windows(n for ns in numbers.values() for n in ns)

    t0 = time.monotonic()
    soak.crowd_began_s = t0 - soak.billboard_started
    done = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(proc.pid, soak.memory, t0, done))
    arrivals = Arrivals(f"ws://{HOST}:{setup.port}/ws", windows)
    books = SeedBooks()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await arrivals.connect(session)
        listening = asyncio.create_task(arrivals.run(session))

        def say(path: str) -> Callable[[str], None]:
            def line(text: str) -> None:
                if not text.startswith("  "):  # the crowd's 5-second progress lines
                    print(f"  [{path}] {text}", file=sys.stderr, flush=True)

            return line

        crowds = {
            path: asyncio.create_task(
                run_crowd(
                    Options(
                        callers=len(plans[path]),
                        rate=2.0,  # validated only: the plans set the pace
                        duration=min(soak.duration, 3600.0),
                        ramp=0.0,
                        via=path,
                        relay=setup.relay,
                        channel=CHANNEL,
                        public_url=setup.relay,
                        twilio_token=setup.twilio_token,
                        ari_listen=(HOST, setup.ari_port),
                        ari_username=setup.ari_user,
                        ari_password=setup.ari_password,
                        ari_wait=30.0,
                        seed=soak.seed,
                        drain=DRAIN_S,
                    ),
                    say=say(path),
                    stop=stop,
                    plans=plans[path],
                    numbers=numbers[path],
                )
            )
            for path in PATHS
            if path != "seed"
        }
        url = f"ws://{HOST}:{setup.port}/ws?token={setup.publisher_token}"
        seeds = [
            asyncio.create_task(seed_call(session, url, plan, number, t0, books, stop))
            for plan, number in zip(plans["seed"], numbers["seed"], strict=True)
        ]
        progress = asyncio.create_task(show_progress(soak, arrivals, t0))
        try:
            reports = dict(zip(crowds, await asyncio.gather(*crowds.values()), strict=True))
            await asyncio.gather(*seeds)
            # The last acked presses are on their way to the subscriber.
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline and any(
                p.seq is not None and p.seq not in arrivals.seed_digits for p in books.presses
            ):
                await asyncio.sleep(0.05)
        finally:
            progress.cancel()
            for task in seeds:
                task.cancel()
            await arrivals.close()
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listening
        soak.memory.sample(proc.pid, time.monotonic() - t0)  # the end
        done.set()
        await sampler
        soak.health = await fetch_health(setup.relay)
    soak.paths = [from_report(path, reports[path]) for path in PATHS if path != "seed"]
    seed_row, soak.lost_acked = from_seed(books, arrivals, len(plans["seed"]))
    seed_row.errors.update(arrivals.errors)
    soak.paths.append(seed_row)
    soak.wire_leaks = arrivals.leaks


async def show_progress(soak: Soak, arrivals: Arrivals, t0: float) -> None:
    while True:
        await asyncio.sleep(60.0 if soak.duration > 300 else 15.0)
        rss = soak.memory.samples[-1][1] if soak.memory.samples else float("nan")
        seen = ", ".join(f"{k} {v}" for k, v in sorted(arrivals.digits_by_source.items()))
        print(
            f"  {time.monotonic() - t0:5.0f} s: digits seen {seen or 'none'}; "
            f"billboard RSS {rss:.1f} MiB",
            file=sys.stderr,
            flush=True,
        )


def run(args: argparse.Namespace) -> Soak:
    began = time.monotonic()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    warmup = min(300.0, max(20.0, args.duration / 3))
    soak = Soak(duration=args.duration, warmup=warmup, seed=seed)
    setup = new_setup()
    keep = Path(args.keep) if args.keep else None
    with tempfile.TemporaryDirectory(prefix="dialjam-soak-") as tmp:
        where = keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        config, recording = where / "soak.toml", where / "soak.mid"
        events, out_log, err_log = (
            where / "events.jsonl",
            where / "stdout.log",
            where / "stderr.log",
        )
        config.write_text(setup.toml())
        for stale in (recording, events):
            stale.unlink(missing_ok=True)
        command = [
            sys.executable, "-m", "billboard", "--headless", "--no-sound",
            "--host", HOST, "--port", str(setup.port), "--config", str(config),
            "--record", str(recording), "--log-events", str(events),
        ]  # fmt: skip
        print(
            f"dialjam soak: {args.duration:g} s, seed {seed}, files in {where}",
            file=sys.stderr,
            flush=True,
        )
        with out_log.open("wb") as out, err_log.open("w+b") as err:
            soak.billboard_started = time.monotonic()
            proc = subprocess.Popen(
                command, cwd=ROOT, env=billboard_env(), stdout=out, stderr=err,
                start_new_session=True,  # a Ctrl-C is ours to handle: we stop it
            )  # fmt: skip
            try:
                asyncio.run(main_async(setup, soak, proc))
            except Exception as exc:  # the run could not happen: say why, exit 1
                soak.failure = f"{type(exc).__name__}: {exc}"
            finally:
                soak.exit_status = stop_billboard(proc)
            text = err_log.read_text(errors="replace")
            if soak.failure:
                soak.failure += "\n  billboard stderr: " + tail(err, 1500)
        soak.stderr_bad, soak.stderr_warnings, soak.stderr_leaks = stderr_problems(
            text, soak.windows
        )
        soak.notes = read_recording(recording, soak.crowd_began_s + soak.warmup)
        soak.eventlog = read_event_log(events, soak.windows)
    soak.elapsed_s = time.monotonic() - began
    return soak


async def main_async(setup: Setup, soak: Soak, proc: subprocess.Popen[bytes]) -> None:
    await wait_ready(setup.relay, proc, START_TIMEOUT_S)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        print("stopping: every caller hangs up", file=sys.stderr)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    await play(setup, soak, proc, stop)
    if stop.is_set():
        soak.failure = "interrupted"


# -- the report ------------------------------------------------------------------------


def checks(soak: Soak) -> list[tuple[str, bool, str]]:
    """(name, held, figures) for every check."""
    out: list[tuple[str, bool, str]] = []
    problems = [f"{p.name}: {'; '.join(p.problems)}" for p in soak.paths if p.problems]
    sent = sum(p.sent for p in soak.paths)
    out.append(
        (
            "presses",
            bool(soak.paths) and not problems and sent > 0,
            "; ".join(problems)
            or f"{sent:,} sent on {len(soak.paths)} paths: every one arrived once, in order",
        )
    )
    acked = sum(p.acked or 0 for p in soak.paths)
    out.append(
        (
            "acknowledged",
            soak.lost_acked == 0 and acked > 0,
            f"{soak.lost_acked} of {acked:,} acknowledged presses lost",
        )
    )
    crowd_errors = Counter[str]()
    for p in soak.paths:
        crowd_errors.update({f"{p.name}: {k}": v for k, v in p.errors.items()})
    relay_errors = {
        k: v for k, v in soak.health.get("errors", {}).items() if k not in EXPECTED_RELAY_ERRORS
    }
    expected = {
        k: v for k, v in soak.health.get("errors", {}).items() if k in EXPECTED_RELAY_ERRORS
    }
    drops = soak.health.get("drops", 0)
    ari_links = soak.health.get("ari", {}).get("connections")
    listed = [f"{k} ×{v}" for k, v in sorted(crowd_errors.items())]
    listed += [f"relay {k} ×{v}" for k, v in sorted(relay_errors.items())]
    listed += [f"relay drops ×{drops}"] if drops else []
    listed += [f"the relay's ARI link connected {ari_links} times"] if ari_links != 1 else []
    out.append(
        (
            "errors",
            not listed and bool(soak.health),
            ", ".join(listed)
            or "crowd 0, relay /healthz 0 beyond the expected ("
            + (", ".join(f"{k} ×{v}" for k, v in sorted(expected.items())) or "none")
            + ": the fake Asterisk's start and stop), 0 drops, one ARI connection",
        )
    )
    m = soak.memory
    if len(m.samples) >= 2:
        start, warm, end = m.samples[0][1], m.at(soak.warmup), m.samples[-1][1]
        top = max(mib for _, mib in m.samples)
        ratio, growth = end / warm, end - warm
        slope = m.slope_mib_per_h(soak.warmup)
        trend = f", trend {slope:+.1f} MiB/h" if slope is not None else ""
        kept = soak.notes.after
        per_note = f", {growth * 2**20 / kept:.0f} B a note" if kept and growth > 0 else ""
        out.append(
            (
                "memory",
                growth < MEMORY_GROWTH_MIB,
                f"billboard RSS start {start:.1f}, after warm-up ({soak.warmup:g} s) {warm:.1f}, "
                f"end {end:.1f}, max {top:.1f} MiB (VmHWM {m.peak_hwm_mib:.1f}); "
                f"end / after warm-up {ratio:.3f} ({growth:+.1f} MiB{trend}; flat: "
                f"< {MEMORY_GROWTH_MIB:g} MiB); meanwhile the recording kept {kept:,} more "
                f"notes{per_note}",
            )
        )
    else:
        out.append(("memory", False, "too few samples of the billboard's memory"))
    n = soak.notes
    out.append(
        (
            "notes",
            n.error is None and n.stuck == 0 and n.played > 0,
            n.error
            or f"{n.played:,} notes on {n.tracks} tracks, {n.stuck} stuck, "
            f"{n.stray_offs} stray note-offs, longest held {n.longest_s:.2f} s",
        )
    )
    out.append(
        (
            "stderr",
            not soak.stderr_bad and soak.exit_status == 0,
            f"exit status {soak.exit_status}; "
            + (
                f"{len(soak.stderr_bad)} Traceback/ERROR lines, first: {soak.stderr_bad[0][:160]}"
                if soak.stderr_bad
                else f"no Traceback, no ERROR ({soak.stderr_warnings} WARNING lines)"
            ),
        )
    )
    leaks = soak.eventlog.leaks + soak.wire_leaks + soak.stderr_leaks
    e = soak.eventlog
    out.append(
        (
            "privacy",
            not leaks and e.events > 0,
            f"the event log ({e.events:,} events), the seed subscriber's events and stderr: "
            + (
                f"{len(leaks)} runs of the callers' numbers, e.g. {leaks[0][:3]}…"
                if leaks
                else f"no run of ≥ {DIGIT_RUN} digits of the {soak.numbers} numbers called from"
            ),
        )
    )
    return out


def render(soak: Soak) -> tuple[str, bool]:
    lines = [
        f"dialjam soak: {soak.duration:g} s, every path at once (seed {soak.seed}, "
        f"{soak.elapsed_s:.0f} s in all)",
        "",
        f"  {'path':<15} {'callers':>7} {'sent':>7} {'acked':>7} {'arrived':>7} "
        f"{'lost':>5} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}",
    ]
    for p in soak.paths:
        acked = "-" if p.acked is None else f"{p.acked:,}"
        p50 = "-" if p.p50_ms is None else f"{p.p50_ms:.1f}"
        p99 = "-" if p.p99_ms is None else f"{p.p99_ms:.1f}"
        lines.append(
            f"  {TITLES[p.name]:<15} {p.callers:>7} {p.sent:>7,} {acked:>7} {p.arrived:>7,} "
            f"{p.lost:>5} {p50:>7} {p99:>7} {sum(p.errors.values()):>6}"
        )
    lines.append("")
    results = checks(soak)
    if soak.failure:
        results.insert(0, ("run", False, soak.failure))
    for name, held, figures in results:
        lines.append(f"  {name:<13} {'PASS' if held else 'FAIL'}  {figures}")
    failed = [name for name, held, _ in results if not held]
    lines.append("")
    lines.append(f"  verdict       {'PASS' if not failed else 'FAIL: ' + ', '.join(failed)}")
    return "\n".join(lines), not failed


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--duration", type=float, default=1800.0, help="seconds the crowd plays (default 1800)"
    )
    p.add_argument("--seed", type=int, help="the crowd's random seed (default: random, printed)")
    p.add_argument("--keep", help="keep the config, recording, event log and logs in this folder")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    if not 30 <= args.duration <= 3600 or not math.isfinite(args.duration):
        p.error("--duration must be 30–3600 s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if sys.platform != "linux":
        print("soak.py needs Linux (/proc)", file=sys.stderr)
        return 2
    soak = run(args)
    text, ok = render(soak)
    print(text)
    if args.json:
        doc = dataclasses.asdict(soak) | {"checks": checks(soak), "ok": ok, "windows": None}
        Path(args.json).write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
