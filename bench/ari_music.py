#!/usr/bin/env python3
"""The music down Asterisk callers' lines (``relay/gateways/ari_media.py``): how late
and how evenly the relay's RTP reaches Asterisk, and what each call costs.

``.venv/bin/python bench/ari_music.py [--callers N] [--seconds S] [--json FILE]`` runs,
in one process on one core, a relay with its ARI gateway, the fake Asterisk
(``relay/rehearsal/fake_ari.py``: its external media channels record the RTP they
get) and a fake billboard feeding ``/phone-audio`` one bundle per 20 ms. N callers
(20) call in, each gets an external media channel and a bridge, then the billboard
plays for S seconds (10); each bundle's frame carries its number, so every RTP packet
tells which bundle it came from. Measured:

- the delay from the billboard sending a bundle to Asterisk receiving its RTP packet
  (median, p99), beside the jitter budget (``[relay] phone_jitter_ms``, 60 ms) that
  makes most of it;
- the pacing: how far the gaps between one call's packets stray from 20 ms (p99);
- the packets lost (neither played nor received) as a share of those due;
- the CPU the process spends per call, against the same run with one caller (the
  baseline, in the same run): the relay's share is that of the pacer and the sends.

The exit code is 0 whatever the numbers: a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from bench.stats import load, percentile, write_result
from relay.app import create_app, listen
from relay.config import AriConfig, RelayConfig
from relay.gateways.rtp_events import parse_rtp
from relay.phone_audio import FRAME_BYTES, FRAME_S, encode_bundle
from relay.rehearsal.fake_ari import FakeAri

BILLBOARD = "bench-billboard-token"


def frame_of(seq: int) -> bytes:
    """A μ-law frame that says which bundle it is (its first four bytes)."""
    return seq.to_bytes(4, "big") + bytes([0x7E]) * (FRAME_BYTES - 4)


async def run(callers: int, seconds: float) -> dict[str, Any]:
    fake = FakeAri()
    await fake.start()
    config = RelayConfig(host="127.0.0.1", port=0, billboard_token=BILLBOARD)
    ari = AriConfig(
        url=f"http://127.0.0.1:{fake.port}", username="dialjam", password="dialjam", prompt=""
    )
    runner = await listen(create_app(config, None, ari, None), "127.0.0.1", 0)
    port = runner.addresses[0][1]
    try:
        await fake.wait_client()
        ids = [await fake.call(f"+1555000{n:04d}") for n in range(callers)]
        async with asyncio.timeout(30 + callers):
            while any(fake.media.heard_by(i) is None for i in ids):
                await asyncio.sleep(0.05)
        return await play(fake, port, ids, seconds)
    finally:
        await runner.cleanup()
        await fake.close()


async def play(fake: FakeAri, port: int, ids: list[str], seconds: float) -> dict[str, Any]:
    sent: dict[int, float] = {}
    count = round(seconds / FRAME_S)
    headers = {"Authorization": f"Bearer {BILLBOARD}"}
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://127.0.0.1:{port}/phone-audio", headers=headers)
        cpu, wall = time.process_time(), time.monotonic()
        loop = asyncio.get_running_loop()
        due = loop.time()
        for seq in range(count):
            sent[seq] = loop.time()
            await ws.send_bytes(encode_bundle(seq, [frame_of(seq)], {}))
            due += FRAME_S
            await asyncio.sleep(max(0.0, due - loop.time()))
        await asyncio.sleep(0.3)  # the jitter buffer's last frames
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        await ws.close()
    delays: list[float] = []
    gaps: list[float] = []
    received = 0
    for channel_id in ids:
        recorder = fake.media.heard_by(channel_id)
        assert recorder is not None
        last: float | None = None
        for at, data, _ in recorder.packets:
            packet = parse_rtp(data)
            seq = int.from_bytes(packet.payload[:4], "big") if packet else -1
            if seq not in sent:
                continue
            received += 1
            delays.append((at - sent[seq]) * 1000)
            if last is not None:
                gaps.append(abs((at - last) * 1000 - FRAME_S * 1000))
            last = at
    delays.sort()
    gaps.sort()
    return {
        "callers": len(ids),
        "due": count * len(ids),
        "received": received,
        "lost_pct": 100 * (1 - received / (count * len(ids))),
        "delay_ms_p50": percentile(delays, 0.5),
        "delay_ms_p99": percentile(delays, 0.99),
        "pacing_ms_p99": percentile(gaps, 0.99),
        "cpu_pct": 100 * cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    args = parser.parse_args()
    load_at_start = load()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    one = asyncio.run(run(1, args.seconds))
    many = asyncio.run(run(args.callers, args.seconds))
    per_call = (many["cpu_pct"] - one["cpu_pct"]) / max(1, args.callers - 1)
    print(f"ARI phone music: relay + fake Asterisk + billboard on one core, {args.seconds:g} s")
    for r in (one, many):
        print(
            f"  {r['callers']:3d} caller(s): bundle → Asterisk's RTP socket "
            f"{r['delay_ms_p50']:.1f} ms median, {r['delay_ms_p99']:.1f} ms p99 "
            f"(jitter budget 60 ms); pacing p99 ±{r['pacing_ms_p99']:.1f} ms; "
            f"lost {r['lost_pct']:.2f} %; process CPU {r['cpu_pct']:.1f} %"
        )
    print(
        f"  each call beyond the first: {per_call:.2f} % of a core "
        f"(baseline, one caller: {one['cpu_pct']:.1f} % with the billboard and fake)"
    )
    figures = {"one": one, "many": many, "cpu_pct_per_call": per_call}
    if args.json:
        settings = {"callers": args.callers, "seconds": args.seconds}
        write_result(args.json, "ari_music", load_at_start, settings, figures)


if __name__ == "__main__":
    main()
