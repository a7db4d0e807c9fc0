"""The soak's billboard: its config and process, its memory while it plays, and what
it leaves behind (the recording, the event log, stderr)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import mido
import orjson

from bench.procs import free_port, rss_kib
from bench.soak_plan import CHANNEL, SAMPLE_EVERY_S, STOP_TIMEOUT_S, leaked_runs
from bench.stats import ROOT
from bench.wsclient import HOST

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
allow_insecure_url = true

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


# What the relay logs that is no number but holds digit runs of its own: Twilio's
# CallSid and StreamSid (two letters, 32 hex digits), an Asterisk channel id (the Unix
# time of its start, a dot, a count) and a loopback port (the fake Asterisk may listen
# on 55503, which shares five digits with a made-up +1555 number).
NOT_NUMBERS = re.compile(
    r"\b[A-Z]{2}[0-9a-f]{32}\b|\b\d{10}\.\d+\b|127\.0\.0\.1'?(?::|, )\d{1,5}\b"
)


def stderr_problems(text: str, windows: set[str]) -> tuple[list[str], int, list[str]]:
    """(Traceback and ERROR lines, WARNING lines counted, number runs found). A stop
    that overran the billboard's deadline (billboard/__main__.py STOP_DEADLINE_S) left
    every thread's stack: its first frames are reported, to say where it hung."""
    lines = text.splitlines()
    bad = [line for line in lines if "Traceback" in line or " ERROR " in line]
    for n, line in enumerate(lines):
        if line.startswith("Timeout (") and line.rstrip().endswith("!"):
            bad.append(" | ".join(s.strip() for s in lines[n : n + 12]))
    warnings = sum(" WARNING " in line for line in text.splitlines())
    return bad, warnings, leaked_runs(NOT_NUMBERS.sub("", text), windows)
