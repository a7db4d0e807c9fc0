#!/usr/bin/env python3
"""The phone music down Twilio streams (``relay/gateways/twilio_media.py``): what one
call's music costs the relay, so how many Twilio calls one core feeds in real time.

``.venv/bin/python bench/twilio_media.py [--streams N] [--seconds S] [--json FILE]``:

- **pure**: `MediaOut.play` then `take` for one 20 ms frame (the JSON and base64 of a
  Twilio ``media`` message, a mark each second), on one core, no I/O;
- **on sockets**: the relay's own `PhoneFeed` (its pacer, its jitter buffer, fed with
  bundles over ``/phone-audio`` as the billboard does) playing to ``--streams``
  WebSocket streams through `MediaWriter`, each read by a client in *another process*
  on another core (so only the relay's side is counted): the relay process's CPU time,
  against a baseline in the same run — the same feed with as many listeners that drop
  their frames (the pacer and the buffer alone, and the fake billboard's sending):
  what each stream adds, so how many one core feeds. The clients also report the gap
  between frames (p50/p99) and how many frames arrived.

The exit code is 0 whatever the numbers: a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing as mp
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import aiohttp
from aiohttp import web

from bench.stats import load, percentile, write_result
from relay.gateways.twilio_media import MediaOut, MediaStats, MediaWriter
from relay.phone_audio import FRAME_BYTES, FRAME_S, encode_bundle
from relay.phone_feed import PhoneFeed
from relay.phone_feed import mount as mount_feed
from relay.ratelimit import LogOnce

SID = "MZ" + "0" * 32


def pure_us(seconds: float) -> float:
    """µs for one frame through MediaOut (queue, JSON, base64, marks) and out."""
    out = MediaOut(SID, MediaStats())
    frame = bytes(range(FRAME_BYTES))
    done, start, now = 0, time.perf_counter(), 0.0
    while time.perf_counter() - start < seconds:
        for _ in range(1000):
            now += FRAME_S
            out.play(frame, now)
            while out.take(now) is not None:
                pass
        done += 1000
    return (time.perf_counter() - start) / done * 1e6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clients(port: int, streams: int, seconds: float, result: Any) -> None:
    """The Twilio side, in its own process (on the other cores): `streams` sockets,
    each noting when its frames arrive."""
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) < (os.cpu_count() or 1):
        others = set(range(os.cpu_count() or 1)) - os.sched_getaffinity(0)
        os.sched_setaffinity(0, others)

    async def run() -> None:
        arrivals: list[list[float]] = [[] for _ in range(streams)]
        async with aiohttp.ClientSession() as session:

            async def one(i: int) -> None:
                async with session.ws_connect(f"ws://127.0.0.1:{port}/stream") as ws:
                    async for msg in ws:
                        if msg.type is aiohttp.WSMsgType.TEXT and '"media"' in msg.data:
                            arrivals[i].append(time.monotonic())

            tasks = [asyncio.create_task(one(i)) for i in range(streams)]
            await asyncio.sleep(seconds)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        gaps = sorted((b - a) * 1000 for times in arrivals for a, b in itertools.pairwise(times))
        result.put((sum(map(len, arrivals)), percentile(gaps, 0.5), percentile(gaps, 0.99)))

    asyncio.run(run())


async def on_sockets(streams: int, seconds: float, sockets: bool) -> dict[str, float]:
    """The relay side: a PhoneFeed fed over /phone-audio, playing to `streams` calls
    (through MediaWriter to real sockets, or to listeners that drop their frames)."""
    feed = PhoneFeed(lambda token: True)
    stats = MediaStats()
    app = web.Application()
    mount_feed(app, feed)
    writers: list[MediaWriter] = []

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        writer = MediaWriter(ws, MediaOut(SID, stats), asyncio.get_running_loop().time, LogOnce())
        writer.start(feed, "c-bench")
        writers.append(writer)
        async for _ in ws:
            pass
        await writer.close()
        return ws

    app.router.add_get("/stream", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    result: Any = mp.get_context("spawn").Queue()
    child = None
    if sockets:
        child = mp.get_context("spawn").Process(
            target=clients, args=(port, streams, seconds + 5.0, result)
        )
        child.start()
        while len(writers) < streams:
            await asyncio.sleep(0.05)
    else:
        stops = [feed.listen(f"c{i}", lambda frame: None) for i in range(streams)]
    mix = bytes(range(FRAME_BYTES))
    async with aiohttp.ClientSession() as session:
        billboard = await session.ws_connect(
            f"ws://127.0.0.1:{port}/phone-audio", headers={"Authorization": "Bearer x"}
        )
        loop = asyncio.get_running_loop()
        began, cpu = loop.time(), time.process_time()
        seq = 0
        while loop.time() - began < seconds:
            seq += 1
            await billboard.send_bytes(encode_bundle(seq, [mix], {}))
            await asyncio.sleep(max(0.0, began + seq * FRAME_S - loop.time()))
        cpu = time.process_time() - cpu
        await billboard.close()
    figures = {"cpu_s": cpu, "frames": float(seq)}
    if child is not None:
        frames, p50, p99 = await asyncio.get_running_loop().run_in_executor(None, result.get)
        child.join()
        figures |= {"received": float(frames), "gap_p50_ms": p50, "gap_p99_ms": p99}
        figures["dropped"] = float(stats.frames_dropped)
    else:
        for stop in stops:
            stop()
    await feed.close()
    await runner.cleanup()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    args = parser.parse_args()
    load_at_start = load()
    if hasattr(os, "sched_setaffinity"):  # the relay's side on one core
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pure = pure_us(min(args.seconds, 3.0))
    base = asyncio.run(on_sockets(args.streams, args.seconds, sockets=False))
    real = asyncio.run(on_sockets(args.streams, args.seconds, sockets=True))
    stream_frames = args.streams * real["frames"]
    per_stream_us = (real["cpu_s"] - base["cpu_s"]) / stream_frames * 1e6
    fixed_us = base["cpu_s"] / base["frames"] * 1e6  # a frame in, a tick, the feeder
    per_core = int((FRAME_S * 1e6 - fixed_us) / max(per_stream_us, 1e-3))
    print(
        f"twilio music, the relay's side on one core ({args.streams} streams, {args.seconds:.0f} s)"
    )
    print(f"  pure: a frame through MediaOut (JSON, base64, marks): {pure:6.1f} µs")
    print(
        f"  baseline: the feed in, the pacer's tick to {args.streams} listeners that drop it "
        f"and the fake billboard: {fixed_us:6.1f} µs per 20 ms"
    )
    print(
        f"  each Twilio stream on a loopback socket adds {per_stream_us:6.1f} µs per 20 ms "
        f"({per_stream_us / pure:.1f}× the pure cost: the socket write is most of it)"
    )
    print(f"  Twilio calls one core feeds in real time: {per_core:,}")
    print(
        f"  at the clients: {int(real['received']):,} of {int(stream_frames):,} frames, gap p50 "
        f"{real['gap_p50_ms']:.1f} ms, p99 {real['gap_p99_ms']:.1f} ms; {int(real['dropped'])} "
        "dropped by the 200 ms queues"
    )
    figures = {
        "pure_us_per_frame": pure,
        "baseline_us_per_frame": fixed_us,
        "twilio_us_per_stream_frame": per_stream_us,
        "streams_per_core": per_core,
        **{f"clients_{k}": v for k, v in real.items()},
    }
    if args.json:
        settings = {"streams": args.streams, "seconds": args.seconds}
        write_result(args.json, "twilio_media", load_at_start, settings, figures)


if __name__ == "__main__":
    main()
