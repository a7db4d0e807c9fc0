#!/usr/bin/env python3
"""The SIP gateway's cost per call, beside the Twilio path's, and concurrent SIP calls
with RTP on one core.

1. The cores, in this process on one core: the same generated call audio (silence,
   presses, speech-like noise: bench/dtmf_speed.py's) through a SIP call's RTP path
   (`UserAgent.rtp`: RTP header, source check, in-band detector, press merging) and
   through a Twilio stream's (`TwilioStream.receive`: JSON, base64, the same detector):
   × real time each, and their ratio.
2. Real sockets: this process runs the gateway (`SipGateway`, pinned to one core); a
   child process on the other core places ``--calls`` (300) SIP calls with
   relay.rehearsal.sip_phone and sends each one 20 ms PCMU packets for ``--seconds``
   (10) with a key tone every second. Printed: the gateway's CPU time over the media's
   wall-clock time (below 1.0: the calls run in real time on one core), the keys heard
   against those sounded, and the packets received. The exit code is 0 whatever the
   numbers: it is a measurement.
3. The phone music out: this process runs a gateway with a phone feed (as the relay
   does with ``phone_music``), answers ``--music-calls`` (300) calls whose SDP puts
   their audio at one sink socket, and plays them ``--music-seconds`` (5) of bundles
   pushed straight into the feed's jitter buffer every 20 ms (the billboard's
   WebSocket is not measured here). Every call gets one RTP packet a tick from its own
   socket, by the relay's own pacer. Printed: packets out per CPU second (one core),
   the share of one core the calls took in real time, and — the baseline, in the same
   run — a bare ``sendto`` of the same packets in a loop: how much our path costs
   beyond the system call.

    python bench/sip_calls.py [--calls N] [--seconds S] [--music-calls N]
                              [--music-seconds S] [--only-music] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import numpy as np

from bench.dtmf_speed import call_audio, timed, twilio_frames
from bench.stats import load, write_result
from relay.config import RelayConfig, SipConfig
from relay.gateways.dtmf import KEYS, dtmf_tone, ulaw_encode
from relay.gateways.sip.gateway import SipGateway
from relay.gateways.sip.message import render
from relay.gateways.sip.ua import UserAgent
from relay.gateways.twilio import TwilioStream
from relay.phone_audio import FRAME_S, Bundle, encode_bundle, parse_bundle
from relay.phone_feed import PhoneFeed
from relay.rehearsal.sip_phone import SipCall, SipPhones
from relay.runtime import event_loop_factory

CARRIER = ("198.51.100.7", 5060)
OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
INVITE = render(
    "INVITE sip:jam@192.0.2.1 SIP/2.0",
    [
        ("Via", "SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKbench"),
        ("From", "<sip:+4930123456@carrier.example>;tag=1"),
        ("To", "<sip:jam@192.0.2.1>"),
        ("Call-ID", "bench"),
        ("CSeq", "1 INVITE"),
        ("Contact", "<sip:gw@198.51.100.7>"),
    ],
    OFFER,
)


def cores() -> dict[str, Any]:
    """Part 1: the per-packet cores, the SIP one beside the Twilio one."""
    chunks, pressed = call_audio(60.0, seed=1)
    audio_s = len(chunks) * 160 / 8000
    packets = [
        bytes([0x80, 0, n >> 8 & 0xFF, n & 0xFF]) + (n * 160).to_bytes(4, "big") + b"\0\0\0\7" + c
        for n, c in enumerate(chunks)
    ]

    def sip_run() -> int:
        ua = UserAgent(host="192.0.2.1", port=5060, key=b"k", allocate=lambda: 20000)
        ua.receive(INVITE, CARRIER, 0.0)
        key = next(iter(ua.calls))
        source = ("198.51.100.7", 4000)
        return sum(len(ua.rtp(key, p, source, 0.02 * n)) for n, p in enumerate(packets))

    frames = twilio_frames(chunks)

    def twilio_run() -> int:
        core = TwilioStream(seal_key=b"bench" * 8)
        return sum(len(core.receive(frame, 0.02 * n)) for n, frame in enumerate(frames)) - 1

    figures: dict[str, Any] = {}
    for name, run in (("sip_rtp", sip_run), ("twilio_stream", twilio_run)):
        runs, elapsed, found = timed(3.0, run)
        figures[name] = {
            "real_time_factor": audio_s * runs / elapsed,
            "us_per_packet": elapsed / (runs * len(chunks)) * 1e6,
            "keys": f"{found} of {pressed}",
        }
    ratio = figures["sip_rtp"]["real_time_factor"] / figures["twilio_stream"]["real_time_factor"]
    figures["sip_over_twilio"] = ratio
    for name in ("sip_rtp", "twilio_stream"):
        f = figures[name]
        print(
            f"{name:14s} {f['real_time_factor']:7,.0f}× real time  "
            f"{f['us_per_packet']:5.1f} µs per 20 ms packet  keys {f['keys']}"
        )
    print(f"  a SIP call costs {1 / ratio:.2f}× a Twilio stream's core ({ratio:.2f}× as fast)")
    return figures


def tone_frames(seconds: float) -> tuple[list[bytes], int]:
    """A call's PCMU frames: a 100 ms key tone at the start of every second."""
    parts = []
    keys = 0
    for second in range(int(seconds)):
        parts += [dtmf_tone(KEYS[second % 12], 100), np.zeros(8000 - 800)]
        keys += 1
    data = ulaw_encode(np.concatenate(parts))
    return [data[i : i + 160] for i in range(0, len(data), 160)], keys


async def phones_main(host: str, port: int, calls: int, seconds: float) -> None:
    """The child: place the calls, send the media in real time, hang up."""
    phones = SipPhones((host, port))
    await phones.start()
    placed: list[SipCall] = []
    for _ in range(calls):
        placed.append(await phones.call(f"+4930{len(placed):07d}"))
    frames, keys = tone_frames(seconds)
    print(f"media {keys}", flush=True)
    start = time.perf_counter()
    late = 0.0
    for index, frame in enumerate(frames):
        for call in placed:
            call.send_audio(frame)
        wait = start + 0.02 * (index + 1) - time.perf_counter()
        late = max(late, -wait)
        await asyncio.sleep(max(0.0, wait))
    print(f"sent {len(frames) * calls} late_ms {late * 1000:.1f}", flush=True)
    await asyncio.sleep(0.5)
    await asyncio.gather(*(call.hang_up() for call in placed))
    phones.close()


async def calls_on_one_core(calls: int, seconds: float) -> dict[str, Any]:
    """Part 2: the gateway here, the phones in a child process."""
    config = SipConfig(
        host="127.0.0.1", port=0, rtp_ports="40000-41999", max_calls=calls + 10, silence_s=60
    )
    heard: dict[str, int] = {}

    def publish(channel: str, data: dict[str, Any]) -> None:
        if data["event"] == "digit":
            heard[data["caller"]] = heard.get(data["caller"], 0) + 1

    gateway = SipGateway(config, RelayConfig(pseudonym_key="bench"), publish, lambda code: None)
    await gateway.start()
    assert gateway.address is not None
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--phones", f"{gateway.address[0]}:{gateway.address[1]}",
        "--calls", str(calls), "--seconds", str(seconds),
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert child.stdout is not None
    line = (await child.stdout.readline()).decode().split()
    keys = int(line[1])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    packets0 = sum(call.media.packets for call in gateway.ua.calls.values())
    line = (await child.stdout.readline()).decode().split()
    packets = sum(call.media.packets for call in gateway.ua.calls.values()) - packets0
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await child.wait()
    await gateway.stop()
    figures = {
        "calls": calls,
        "seconds": seconds,
        "cpu_share_of_one_core": cpu / wall,
        "keys_heard": sum(heard.values()),
        "keys_sounded": keys * calls,
        "packets_received": packets,
        "packets_sent": int(line[1]),
        "sender_late_ms": float(line[3]),
    }
    print(
        f"{calls} SIP calls with RTP, {seconds:g} s: the gateway used "
        f"{figures['cpu_share_of_one_core']:.0%} of one core "
        f"({'real time' if cpu / wall < 1 else 'NOT real time'}); keys heard "
        f"{figures['keys_heard']} of {figures['keys_sounded']}; packets {packets} of "
        f"{figures['packets_sent']} (sender at most {figures['sender_late_ms']:.0f} ms late)"
    )
    return figures


def music_invite(n: int, sink: int) -> bytes:
    """Call `n` from the carrier, its audio at the sink's port on 127.0.0.1."""
    offer = OFFER.replace(b"198.51.100.7", b"127.0.0.1").replace(b"4000", str(sink).encode())
    return (
        INVITE.replace(OFFER, offer)
        .replace(b"Content-Length: %d" % len(OFFER), b"Content-Length: %d" % len(offer))
        .replace(b"Call-ID: bench", b"Call-ID: bench-%d" % n)
        .replace(b"z9hG4bKbench", b"z9hG4bKbench%d" % n)
        .replace(b"+4930123456", b"+4930%07d" % n)
    )


def music_ack(invite: bytes, tag: str) -> bytes:
    head = invite.split(b"\r\n\r\n")[0].replace(b"INVITE sip:", b"ACK sip:", 1)
    head = head.replace(b"CSeq: 1 INVITE", b"CSeq: 1 ACK").replace(b"z9hG4bKbench", b"z9hG4bKack")
    head = head.replace(b"To: <sip:jam@192.0.2.1>", b"To: <sip:jam@192.0.2.1>;tag=" + tag.encode())
    return head.split(b"Content-Length")[0] + b"Content-Length: 0\r\n\r\n"


def bare_sendto(packets: int) -> float:
    """The baseline: `packets` RTP-sized datagrams sent in a loop; CPU seconds."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out,
    ):
        sink.bind(("127.0.0.1", 0))
        to = sink.getsockname()
        out.setblocking(False)
        packet = bytes(172)
        dropped = 0  # as the gateway counts them
        cpu = time.process_time()
        for _ in range(packets):
            try:
                out.sendto(packet, to)
            except BlockingIOError:
                dropped += 1
        return time.process_time() - cpu


async def music_out(calls: int, seconds: float) -> dict[str, Any]:
    """Part 3: the phone music to `calls` SIP calls for `seconds`, on this core."""
    loop = asyncio.get_running_loop()
    phone = PhoneFeed(lambda token: False, clock=loop.time)
    config = SipConfig(
        host="127.0.0.1", port=0, rtp_ports="42000-43999", max_calls=calls + 10, silence_s=600
    )
    relay = RelayConfig(pseudonym_key="bench")
    gateway = SipGateway(config, relay, lambda c, d: None, lambda code: None, phone=phone)
    await gateway.start()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    carrier = ("127.0.0.1", 9)  # the discard port: our SIP answers go nowhere
    for n in range(calls):
        invite = music_invite(n, int(sink.getsockname()[1]))
        gateway.on_sip(invite, carrier)
        call = next(c for c in gateway.ua.calls.values() if c.call_id == f"bench-{n}")
        gateway.on_sip(music_ack(invite, call.local_tag), carrier)
    ulaw = ulaw_encode(np.sin(np.arange(160) * 2 * np.pi * 440 / 8000) * 8000)
    bundle = parse_bundle(encode_bundle(1, [ulaw], {}))
    ticks = round(seconds / FRAME_S)

    async def billboard() -> None:
        due = loop.time()
        for seq in range(ticks + 5):
            phone.buffer.push(Bundle(seq, bundle.mixes, bundle.callers), loop.time())
            due += FRAME_S
            await asyncio.sleep(max(0.0, due - loop.time()))

    feeding = loop.create_task(billboard())
    await asyncio.sleep(0.2)  # the jitter buffer fills, the pacer runs
    sent0, cpu0, wall0 = gateway.music_counts["sent"], time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds - 0.2)
    sent = gateway.music_counts["sent"] - sent0
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await feeding
    await gateway.stop()
    await phone.close()
    sink.close()
    baseline = bare_sendto(max(sent, 1))
    figures = {
        "calls": calls,
        "seconds": seconds,
        "packets_sent": sent,
        "expected_packets": round(calls * wall / FRAME_S),
        "packets_per_cpu_second": sent / cpu,
        "cpu_share_of_one_core": cpu / wall,
        "bare_sendto_per_cpu_second": max(sent, 1) / baseline,
        "dropped": gateway.music_counts["dropped"],
        "failed": gateway.music_counts["failed"],
        "stalls": phone.stalls,
    }
    ratio = figures["bare_sendto_per_cpu_second"] / figures["packets_per_cpu_second"]
    figures["cost_over_bare_sendto"] = ratio
    print(
        f"music out to {calls} SIP calls, {wall:.1f} s: {sent} packets "
        f"(of {figures['expected_packets']}), {figures['packets_per_cpu_second']:,.0f} "
        f"packets per CPU second ({figures['packets_per_cpu_second'] / 50:,.0f} calls per "
        f"core), {figures['cpu_share_of_one_core']:.0%} of one core; a bare sendto: "
        f"{figures['bare_sendto_per_cpu_second']:,.0f} per CPU second (ours costs "
        f"{ratio:.2f}×); dropped {figures['dropped']}, failed {figures['failed']}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--music-calls", type=int, default=300)
    parser.add_argument("--music-seconds", type=float, default=5.0)
    parser.add_argument("--only-music", action="store_true", help="part 3 alone")
    parser.add_argument("--json", metavar="FILE", help="also save the figures as JSON")
    parser.add_argument("--phones", help=argparse.SUPPRESS)  # the child's mode
    args = parser.parse_args()
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if args.phones:
        if len(affinity) > 1:
            os.sched_setaffinity(0, {affinity[-1]})
        host, _, port = args.phones.rpartition(":")
        asyncio.run(phones_main(host, int(port), args.calls, args.seconds))
        return
    if affinity:
        os.sched_setaffinity(0, {affinity[0]})
    load_at_start = load()
    figures = {} if args.only_music else {"cores": cores()}
    # The relay's own loop (uvloop where installed), as `python -m relay` runs it.
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        if not args.only_music:
            figures["concurrent"] = runner.run(calls_on_one_core(args.calls, args.seconds))
        figures["music_out"] = runner.run(music_out(args.music_calls, args.music_seconds))
    if args.json:
        settings = {
            "calls": args.calls,
            "seconds": args.seconds,
            "music_calls": args.music_calls,
            "music_seconds": args.music_seconds,
        }
        write_result(args.json, "sip_calls", load_at_start, settings, figures)


if __name__ == "__main__":
    main()
