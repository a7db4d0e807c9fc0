#!/usr/bin/env python3
"""Memory benchmark: the relay's history byte bounds and who may open a channel.

``python bench/relay_memory.py`` starts a real relay (``python -m relay`` on a free
port of 127.0.0.1, its default settings except those named here) and floods it for
``--duration`` seconds (default 20) the way an attacker would:

- ``--holders`` (150) token holders publish frames as big as a token holder may send
  (``token_max_frame`` less one byte, see HOLDER_FRAME) as fast as the relay takes
  them: every other frame to the installation's channel (one hot channel, held to
  ``history_bytes``), the others round robin over ``--channels`` (1,500) channels of
  their own (many channels, held together to ``history_total_bytes``); past
  ``--max-channels`` (1,000) new channels are refused with ``too_many_channels``.
- ``--anonymous`` (50) connections without a token each try to open a new channel
  five times a second (a publish asking for an ack to a name never used, then a
  subscribe to another): none may succeed. The answer is ``unknown_channel``, or
  ``rate_limited`` when a busy relay reads a client's frames in a burst.

It reads the relay's resident memory (VmRSS, VmHWM from /proc/PID/status) idle, with
everyone connected, at the peak, when the flood stops and after every client has
left; and the relay's own /healthz figures (history bytes held, events dropped by
each byte bound, channels held, errors by code). At the end an anonymous client
subscribes to the installation's ``dialjam:control``, which must still answer
``subscribed`` however many channels the flood made.

Without the byte bounds the same run's history could reach channels × history_events ×
frame size (printed as "ceiling without byte bounds"); with them, history is at most
``history_total_bytes`` and the relay's growth is that plus the allocator's slack
(glibc keeps freed 64 KiB blocks in its heap; with ``MALLOC_MMAP_THRESHOLD_=32768`` in
the environment they go back to the system and the growth is close to the history
held). ``--history-bytes 1099511627776 --history-total-bytes 1099511627776`` shows the
same flood with no byte bound at all.

    python bench/relay_memory.py [--duration S] [--holders N] [--anonymous N]
                                 [--channels N] [--max-channels N]
                                 [--history-bytes B] [--history-total-bytes B]
                                 [--json FILE]

Linux only (/proc). A default run takes about 30 s; the exit code is 1 when the run
failed (relay died, connections refused) or a check did not hold, else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import orjson

from bench.procs import free_port, raise_fd_limit, rss_kib, stop, tail, wait_for_port
from bench.scenarios import RELAYS, ROOT
from bench.stats import load, write_result
from bench.wsclient import HOST, BenchError, WsClient, connect_all

RELAY_START_S = 15.0  # longest wait for the relay to listen

TOKEN = "bench-memory-billboard-token"
TOKEN_MAX_FRAME = 65536  # the relay's default token_max_frame
# aiohttp (3.14, _websocket/reader_py.py) refuses a message of exactly max_msg_size
# with 1009, so the biggest frame a token holder gets through is one byte less.
HOLDER_FRAME = TOKEN_MAX_FRAME - 1
MAX_FRAME = 4096  # the relay's default max_frame (no token)
ANON_PER_S = 5.0  # each anonymous connection's attempts a second (the limit is 20)
SAMPLE_S = 0.25
SETTLE_S = 3.0
MIB = 1 << 20
HOT = "dialjam"  # the installation's channel: pinned, and every other holder frame


class Client(WsClient):
    """A WebSocket client that tallies what the relay answers, by type and code."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.answers: Counter[str] = Counter()
        self.subscribed = asyncio.get_running_loop().create_future()

    def on_text(self, payload: bytes, now: int) -> None:
        obj = orjson.loads(payload)
        for msg in obj if isinstance(obj, list) else [obj]:
            kind = msg.get("type", "data")
            self.answers[f"{kind}:{msg['code']}" if kind == "error" else kind] += 1
            if kind == "subscribed" and not self.subscribed.done():
                self.subscribed.set_result(msg)


def publisher_frame(channel: str, token: str | None, size: int, ack: bool = False) -> bytes:
    """A publisher frame of exactly `size` bytes (the data padded to fit)."""
    head: dict[str, Any] = {"type": "publisher", "id": channel, "data": {"pad": ""}}
    if token:
        head["token"] = token
    if ack:
        head["ack"] = True
    bare = orjson.dumps(head)
    return bare.replace(b'"pad":""', b'"pad":"' + b"x" * (size - len(bare)) + b'"')


def healthz(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=5) as resp:
        result: dict[str, Any] = json.load(resp)
        return result


@dataclass
class Run:
    rss: dict[str, float] = field(default_factory=dict)  # MiB, by moment
    peak_mib: float = 0.0
    holder_frames: int = 0
    holder_bytes: int = 0
    anon_attempts: int = 0
    flood_s: float = 0.0
    health: dict[str, Any] = field(default_factory=dict)
    holder_answers: Counter[str] = field(default_factory=Counter)
    anon_answers: Counter[str] = field(default_factory=Counter)
    anon_closed: int = 0
    holder_closed: int = 0
    control: str = ""


async def flood(args: argparse.Namespace, port: int, pid: int, run: Run) -> None:
    def sample(moment: str) -> None:
        run.rss[moment] = rss_kib(pid)["VmRSS"] / 1024

    sample("idle")
    holders = await connect_all(port, args.holders, lambda: Client(port), 30.0)
    anonymous = await connect_all(port, args.anonymous, lambda: Client(port), 30.0)
    await asyncio.sleep(0.5)
    sample("connected")
    names = [f"mem-{n:05d}" for n in range(args.channels)]
    stop_at = time.monotonic() + args.duration

    async def hold(i: int, client: Client) -> None:
        # Each holder takes every holders-th channel, so all of them are written.
        mine = names[i :: args.holders] or names[i % len(names) :][:1]
        k = 0
        while time.monotonic() < stop_at and not client.closed:
            channel = HOT if k % 2 == 0 else mine[k // 2 % len(mine)]
            frame = publisher_frame(channel, TOKEN, HOLDER_FRAME)
            client.send(frame)
            run.holder_frames += 1
            run.holder_bytes += len(frame)
            k += 1
            await client.drain()  # only waits when the relay stops taking bytes
            if k % 4 == 0:
                await asyncio.sleep(0)

    async def squat(i: int, client: Client) -> None:
        k = 0
        next_at = time.monotonic() + i / args.anonymous / ANON_PER_S  # spread phases
        while next_at < stop_at and not client.closed:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            name = f"anon-{i:03d}-{k:05d}"
            if k % 2 == 0:
                client.send(publisher_frame(name, None, MAX_FRAME, ack=True))
            else:
                client.send(orjson.dumps({"type": "subscriber", "id": name, "v": 2}))
            run.anon_attempts += 1
            k += 1
            next_at += 1.0 / ANON_PER_S

    async def watch() -> None:
        while time.monotonic() < stop_at:
            run.peak_mib = max(run.peak_mib, rss_kib(pid)["VmRSS"] / 1024)
            await asyncio.sleep(SAMPLE_S)

    began = time.monotonic()
    await asyncio.gather(
        *(hold(i, c) for i, c in enumerate(holders)),
        *(squat(i, c) for i, c in enumerate(anonymous)),
        watch(),
    )
    run.flood_s = time.monotonic() - began
    await asyncio.sleep(1.0)  # the last frames and their answers
    sample("flood over")
    run.health = await asyncio.to_thread(healthz, port)

    # The installation's control channel is still there for anyone to subscribe to.
    probe = (await connect_all(port, 1, lambda: Client(port), 10.0))[0]
    probe.send(orjson.dumps({"type": "subscriber", "id": "dialjam:control", "v": 2}))
    try:
        await asyncio.wait_for(probe.subscribed, 5.0)
        run.control = "subscribed"
    except TimeoutError:
        run.control = "no answer: " + (", ".join(probe.answers) or "nothing")

    for c in holders:
        run.holder_answers.update(c.answers)
        run.holder_closed += c.closed
    for c in anonymous:
        run.anon_answers.update(c.answers)
        run.anon_closed += c.closed
    for c in (*holders, *anonymous, probe):
        c.close()
    await asyncio.sleep(SETTLE_S)
    sample("clients gone")
    run.rss["peak"] = max(run.peak_mib, rss_kib(pid)["VmHWM"] / 1024)


def relay_env(args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALJAM_")}
    env.update(
        DIALJAM_BILLBOARD_TOKEN=TOKEN,
        DIALJAM_MAX_CHANNELS=str(args.max_channels),
        DIALJAM_HISTORY_BYTES=str(args.history_bytes),
        DIALJAM_HISTORY_TOTAL_BYTES=str(args.history_total_bytes),
        PYTHONUNBUFFERED="1",
    )
    return env


def mib(n: float) -> str:
    return f"{n / MIB:,.1f} MiB"


def report(args: argparse.Namespace, run: Run) -> tuple[str, bool, dict[str, Any]]:
    """The text report, whether every check held, and the figures for the JSON file."""
    h = run.health
    pinned = 4  # dialjam, :state, :control, :callers
    history = h.get("history_bytes", 0)
    dropped = h.get("history_dropped", {})
    anon_refused = run.anon_answers.get("error:unknown_channel", 0)
    anon_opened = run.anon_answers.get("ack", 0) + run.anon_answers.get("subscribed", 0)
    anon_other = {k: v for k, v in run.anon_answers.items() if k != "error:unknown_channel"}
    held = h.get("channels_held", 0)
    growth = (run.rss["flood over"] - run.rss["connected"]) * MIB
    ceiling = min(args.channels, args.max_channels) * 1000 * TOKEN_MAX_FRAME
    checks = {
        "history held within history_total_bytes": history <= args.history_total_bytes,
        "no anonymous attempt opened a channel": anon_opened == 0 and anon_refused > 0,
        "no channel beyond max_channels + the pinned ones": held <= args.max_channels + pinned,
        "dialjam:control answers an anonymous subscriber": run.control == "subscribed",
        "every token holder's frames were taken (none closed)": run.holder_closed == 0
        and h.get("published", 0) > 0,
    }
    lines = [
        f"dialjam relay memory: {args.holders} token holders × {HOLDER_FRAME:,}-byte "
        f"frames over {args.channels:,} channels + {args.anonymous} anonymous, "
        f"{run.flood_s:.1f} s",
        f"bounds: history_bytes {mib(args.history_bytes)} a channel, history_total_bytes "
        f"{mib(args.history_total_bytes)}, max_channels {args.max_channels:,} "
        f"(+ {pinned} pinned), history_events 1,000",
        "",
        "relay RSS                    MiB",
        *(f"  {moment:<24} {value:8.1f}" for moment, value in run.rss.items()),
        f"  growth under the flood  {growth / MIB:+9.1f}   (history held {mib(history)}; "
        f"bound {mib(args.history_total_bytes)})",
        "",
        f"offered by token holders: {run.holder_frames:,} frames, {mib(run.holder_bytes)} "
        f"({run.holder_bytes / MIB / max(run.flood_s, 1e-9):,.1f} MiB/s)",
        f"relay: published {h.get('published', 0):,}; history dropped by the channel bound "
        f"{dropped.get('channel_bytes', 0):,}, by the total bound {dropped.get('total_bytes', 0):,}"
        f"; channels held {held:,}",
        "token holders were told: "
        + (", ".join(f"{k} {v:,}" for k, v in sorted(run.holder_answers.items())) or "nothing")
        + (f"; {run.holder_closed} closed by the relay" if run.holder_closed else ""),
        f"anonymous: {run.anon_attempts:,} attempts to open a channel, {anon_refused:,} refused "
        f"with unknown_channel"
        + (f"; other answers {dict(anon_other)}" if anon_other else "")
        + (f"; {run.anon_closed} closed by the relay" if run.anon_closed else ""),
        f"relay errors by code: {h.get('errors', {})}",
        f"dialjam:control after the flood: {run.control}",
        f"ceiling without byte bounds: {min(args.channels, args.max_channels):,} channels × "
        f"1,000 events × {TOKEN_MAX_FRAME // 1024} KiB = {ceiling / (1 << 30):,.1f} GiB",
        "",
        *(f"{'PASS' if ok else 'MISS'}  {what}" for what, ok in checks.items()),
    ]
    figures = {
        "flood_s": run.flood_s,
        "holders": args.holders,
        "anonymous": args.anonymous,
        "channels": args.channels,
        "holder_frame_bytes": HOLDER_FRAME,
        "offered_mib": run.holder_bytes / MIB,
        "rss_mib": dict(run.rss),
        "history_mib": history / MIB,
        "history_total_bytes_mib": args.history_total_bytes / MIB,
        "history_dropped": dropped,
        "channels_held": held,
        "anonymous_attempts": run.anon_attempts,
        "anonymous_opened": anon_opened,
        "control": run.control,
        "errors": h.get("errors", {}),
        "checks": {what: ok for what, ok in checks.items()},
    }
    return "\n".join(lines), all(checks.values()), figures


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Relay memory under a flood (see the docstring).")
    p.add_argument("--duration", type=float, default=20.0, help="flood, s (default 20)")
    p.add_argument("--holders", type=int, default=150, help="token holders (default 150)")
    p.add_argument("--anonymous", type=int, default=50, help="anonymous clients (default 50)")
    p.add_argument(
        "--channels", type=int, default=1500, help="channels the holders write (default 1500)"
    )
    p.add_argument("--max-channels", type=int, default=1000, help="relay's (default 1000)")
    p.add_argument("--history-bytes", type=int, default=1 << 20, help="default 1 MiB")
    p.add_argument("--history-total-bytes", type=int, default=64 << 20, help="default 64 MiB")
    p.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    args = p.parse_args(argv)
    if not 1 <= args.duration <= 120:
        p.error("--duration must be 1–120 s")
    if args.holders < 1 or args.anonymous < 1 or args.channels < 1 or args.max_channels < 1:
        p.error("--holders, --anonymous, --channels and --max-channels must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if sys.platform != "linux":
        print("relay_memory.py needs Linux (/proc)")
        return 2
    raise_fd_limit()
    load_at_start = load()
    port = free_port()
    run = Run()
    with tempfile.TemporaryFile() as relay_log:
        relay = subprocess.Popen(
            RELAYS["dialjam"].command(HOST, port),
            cwd=ROOT,
            env=relay_env(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the announcement (with this run's tokens)
            stderr=relay_log,
        )
        try:
            wait_for_port(port, relay, RELAY_START_S)
            time.sleep(0.5)  # imports done, idle
            asyncio.run(flood(args, port, relay.pid, run))
            if relay.poll() is not None:
                raise BenchError(f"relay exited with code {relay.returncode} during the run")
        except (BenchError, OSError) as exc:
            print(f"relay_memory: the run failed: {exc}", file=sys.stderr)
            log = tail(relay_log)
            if log:
                print(f"relay output: {log}", file=sys.stderr)
            return 1
        finally:
            stop(relay)
    text, ok, figures = report(args, run)
    print(text)
    if args.json:
        settings = {
            k: getattr(args, k)
            for k in (
                "duration",
                "holders",
                "anonymous",
                "channels",
                "max_channels",
                "history_bytes",
                "history_total_bytes",
            )
        }
        write_result(args.json, "relay_memory", load_at_start, settings, figures)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
