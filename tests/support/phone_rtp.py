"""Hearing the phone music as a caller's phone does, for tests: a UDP socket that
records the RTP a gateway sends it (and can speak RTP back from the same port, as a
phone does), the stream's headers checked against RFC 3550, G.711 decoded, the notes
found in its spectrum, the packets' pacing; and a fake billboard that renders notes
with the real phone mixer and feeds them to a relay's ``/phone-audio``.

Reusable for the end-to-end test with the real billboard: only `PhoneBillboard` stands
in for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS
from billboard.phone_mix import PhoneMixer
from billboard.samples import load_sample_sets
from relay.gateways.dtmf import ULAW_TO_PCM
from relay.gateways.rtp_events import RtpPacket, parse_rtp
from relay.gateways.sip.media import ALAW_TO_PCM
from relay.phone_audio import FRAME_S, encode_bundle, parse_bundle
from tests.support.relay import BILLBOARD, RunningRelay

RATE = 8000
# One note a part, a fourth apart, so each part's harmonics stand clear of the other's.
LEAD, PLUCK = 69, 72  # A4 (440 Hz) on the lead, C5 (523 Hz) on the pluck
TUNE = {"lead": LEAD, "pluck": PLUCK}
Audio = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # the loop's clock when it arrived, seconds
    source: tuple[str, int]
    packet: RtpPacket


class _Recording(asyncio.DatagramProtocol):
    def __init__(self, recorder: RtpRecorder) -> None:
        self.recorder = recorder

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.recorder.received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error for what we sent: the gateway's port closed


@dataclass
class RtpRecorder:
    """A phone's RTP port on 127.0.0.1: what arrives is kept with its arrival time
    (`arrivals`), anything that is not RTP is counted (`junk`)."""

    arrivals: list[Arrival] = field(default_factory=list)
    junk: int = 0
    port: int = 0
    _transport: asyncio.DatagramTransport | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    async def open(cls) -> RtpRecorder:
        recorder = cls()
        loop = recorder._loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Recording(recorder), local_addr=("127.0.0.1", 0)
        )
        recorder._transport = transport
        recorder.port = int(transport.get_extra_info("sockname")[1])
        return recorder

    def received(self, data: bytes, source: tuple[str, int]) -> None:
        assert self._loop is not None
        packet = parse_rtp(data)
        if packet is None:
            self.junk += 1
            return
        self.arrivals.append(Arrival(self._loop.time(), source, packet))

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        """Send from the recorder's own port (symmetric RTP, as a phone does)."""
        assert self._transport is not None
        self._transport.sendto(data, to)

    async def wait_for(self, count: int, timeout: float) -> None:
        """Until `count` packets came, or `timeout` seconds (then returns anyway)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self.arrivals) < count:
                    await asyncio.sleep(0.02)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def key_packets(key: str, payload_type: int, ssrc: int = 0x5EED, press: int = 0) -> list[bytes]:
    """A key press as a phone sends it (RFC 4733 §2.5): 100 ms of telephone-event
    packets sharing one timestamp, the first marked, the end packet three times; the
    `press`-th press of a call (from 0) gets its own timestamp and sequence numbers."""
    event = "0123456789*#ABCD".index(key)
    packets = []
    timestamp = 8000 * (1 + press)
    for n, (duration, end) in enumerate([(160, 0), (320, 0), (480, 0), (640, 0)] + [(800, 1)] * 3):
        mark = 0x80 if n == 0 else 0
        head = struct.pack("!BBHII", 0x80, mark | payload_type, 7 * press + n, timestamp, ssrc)
        packets.append(head + struct.pack("!BBH", event, end << 7 | 10, duration))
    return packets


def stream_faults(arrivals: Sequence[Arrival]) -> list[str]:
    """What breaks RFC 3550 §5.1 (and RFC 3551 §4.1's marker) in one stream of 20 ms
    G.711 packets, in arrival order: a version other than 2, a change of payload type
    or SSRC, a sequence number that is not one more, a timestamp that moved by other
    than 160 — or, on a marked packet (a gap before it: ticks with nothing sent), by
    other than a whole number (≥ 2) of 160s; an unmarked first packet. Empty: clean."""
    packets = [a.packet for a in arrivals]
    faults = [] if not packets or packets[0].marker else ["the first packet is not marked"]
    for index, (before, now) in enumerate(itertools.pairwise(packets), 1):
        if now.version != 2:
            faults.append(f"#{index}: version {now.version}")
        if (now.payload_type, now.ssrc) != (before.payload_type, before.ssrc):
            faults.append(f"#{index}: payload type or SSRC changed")
        if now.sequence != (before.sequence + 1) % 2**16:
            faults.append(f"#{index}: sequence {before.sequence} then {now.sequence}")
        step = (now.timestamp - before.timestamp) % 2**32
        if (step != 160) if not now.marker else (step < 320 or step % 160):
            faults.append(f"#{index}: timestamp +{step} (marker {now.marker})")
        if len(now.payload) != 160:
            faults.append(f"#{index}: {len(now.payload)} bytes of audio")
    return faults


def gaps(arrivals: Sequence[Arrival]) -> int:
    """The marked packets after the first: how often the stream paused."""
    return sum(a.packet.marker for a in arrivals[1:])


def decode(arrivals: Iterable[Arrival], alaw: bool) -> Audio:
    """The stream's G.711 audio (in arrival order) as samples within ±1."""
    data = b"".join(a.packet.payload for a in arrivals)
    table = ALAW_TO_PCM if alaw else ULAW_TO_PCM
    return table[np.frombuffer(data, dtype=np.uint8)].astype(np.float64) / 32768


def onset(arrivals: Sequence[Arrival], alaw: bool, dbfs: float = -45.0) -> Arrival | None:
    """The first packet louder than `dbfs` (RMS): when a note was first heard, for a
    key press's delay to its note in the caller's ear."""
    return next((a for a in arrivals if rms_dbfs(decode([a], alaw)) > dbfs), None)


def midi_hz(note: float) -> float:
    return float(440.0 * 2.0 ** ((note - 69) / 12))


def rms_dbfs(x: Audio) -> float:
    return float(10 * np.log10(np.mean(x**2) + 1e-12)) if x.size else -120.0


def level_at(x: Audio, hz: float, width: float = 15.0) -> float:
    """The power (Hann-windowed FFT) within `width` Hz of `hz`."""
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(power[np.abs(freqs - hz) < width].sum())


def stands_out(x: Audio, hz: float, width: float = 15.0) -> float:
    """How far the spectrum around `hz` stands above a typical stretch of the band of
    the same width (the median of 300-3,400 Hz), in dB."""
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    bin_hz = freqs[1]
    per = max(1, round(2 * width / bin_hz))
    band = power[(freqs >= 300) & (freqs <= 3400)]
    typical = float(np.median(band)) * per
    return float(10 * np.log10(level_at(x, hz, width) / (typical + 1e-30)))


def interarrival_ms(arrivals: Sequence[Arrival]) -> tuple[float, float]:
    """The median and 99th percentile of the gaps between packets, in ms."""
    gaps = np.diff([a.at for a in arrivals]) * 1000
    if not gaps.size:
        return (0.0, 0.0)
    return (float(np.percentile(gaps, 50)), float(np.percentile(gaps, 99)))


def pacing(name: str, arrivals: Sequence[Arrival]) -> str:
    """A line saying how `arrivals` were paced, for a test's output."""
    p50, p99 = interarrival_ms(arrivals)
    return (
        f"{name}: {len(arrivals)} packets, interarrival p50 {p50:.1f} ms p99 {p99:.1f} ms, "
        f"{gaps(arrivals)} gap(s)"
    )


def heard_frames(bundles: Sequence[bytes], caller: str) -> list[bytes]:
    """The μ-law frames `caller` is sent in `bundles`, in order."""
    return [parse_bundle(b).for_caller(caller) for b in bundles]


def sounding(arrivals: Sequence[Arrival], alaw: bool) -> list[Arrival]:
    """The packets that carry something: the gateway sends the codec's silence while
    it has nothing to play (a carrier hangs up a call whose RTP stops)."""
    quiet = b"\xd5" * 160 if alaw else b"\xff" * 160
    return [a for a in arrivals if a.packet.payload != quiet]


def in_order(payloads: Sequence[bytes], frames: Sequence[bytes]) -> bool:
    """Whether every payload is one of `frames`, in their order (frames may be
    skipped: a jitter buffer drops the oldest after a stall)."""
    remaining = iter(frames)
    return bool(payloads) and all(any(p == f for f in remaining) for p in payloads)


# -- the billboard's side, faked with the real mixer ------------------------------------

SOUNDS = Path(__file__).resolve().parents[2] / "sounds"


def melody(
    notes: Mapping[str, int], seconds: float, step_s: float = 0.25
) -> list[NoteOn | NoteOff]:
    """Each track of `notes` playing its note every `step_s` (each held 0.2 s), the
    tracks in turn, as the billboard's scheduler hands notes to its sinks."""
    played: list[NoteOn | NoteOff] = []
    tracks = list(notes.items())
    for n in range(int(seconds / step_s)):
        track, note = tracks[n % len(tracks)]
        at = n * step_s
        played.append(NoteOn(time=at, step=n, track=track, channel=0, note=note, velocity=110))
        played.append(NoteOff(time=at + 0.2, step=n, track=track, channel=0, note=note))
    return played


def render_bundles(
    notes: Sequence[NoteOn | NoteOff], seconds: float, holders: Mapping[str, str]
) -> list[bytes]:
    """The bundles the billboard would send for `notes` (billboard.phone_mix's real
    mixer and samples), 20 ms each, each caller of `holders` hearing their track's mix
    (the caller → the track they hold) and everyone else the shared mix."""
    mixer = PhoneMixer(load_sample_sets(SOUNDS), tuple(DEFAULT_TRACKS))
    for note in notes:
        (mixer.note_on if isinstance(note, NoteOn) else mixer.note_off)(note)
    tracks = sorted(set(holders.values()))
    index = {track: i + 1 for i, track in enumerate(tracks)}
    bundles = []
    for n in range(round(seconds / FRAME_S)):
        frame = mixer.frame(n * FRAME_S, tracks)
        mixes = [frame.mixes[None].ulaw] + [frame.mixes[t].ulaw for t in tracks]
        callers = {caller: index[track] for caller, track in holders.items()}
        bundles.append(encode_bundle(n + 1, mixes, callers))
    return bundles


class PhoneBillboard:
    """The billboard's feed of ``/phone-audio`` (its token), one bundle every 20 ms on
    deadlines, from a task (`start`), until its bundles run out or `close`."""

    def __init__(self, relay: RunningRelay) -> None:
        self.relay = relay
        self.sent = 0
        self.sent_at: list[float] = []  # when each bundle went (the loop's clock)
        self._task: asyncio.Task[None] | None = None

    async def start(self, bundles: Sequence[bytes]) -> None:
        ws = await self.relay.connect(
            "/phone-audio", headers={"Authorization": f"Bearer {BILLBOARD}"}
        )
        self._task = asyncio.create_task(self._feed(ws, bundles))

    async def _feed(self, ws: Any, bundles: Sequence[bytes]) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            for bundle in bundles:
                await ws.send_bytes(bundle)
                self.sent += 1
                self.sent_at.append(loop.time())
                due += FRAME_S
                await asyncio.sleep(max(0.0, due - loop.time()))
        finally:
            await ws.close()

    async def done(self, timeout: float) -> None:
        if self._task is not None:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
