#!/usr/bin/env python3
"""Load benchmark for the relay: dialjam against a naive per-message aiohttp relay.

``make bench`` (or ``python bench/relay_load.py``) runs three scenarios, each against
a fresh dialjam relay (``python -m relay`` with ``DIALJAM_RATE=0``,
``DIALJAM_QUEUE=100000`` and ``DIALJAM_CONNECTIONS_PER_ADDRESS=0``: no rate limit, no cap
for the one address the load comes from, nothing dropped unless truly overloaded) and a
fresh baseline (``bench/naive_relay.py``: ``for ws in subscribers: await
ws.send_str(json.dumps(data))``), one after the other, over loopback:

  (a) 1,000 publishers × 2 events/s → 5 plain (v1) subscribers   10,000 deliveries/s
  (b) 50 publishers × 20 events/s → 200 v2 subscribers           200,000 deliveries/s
  (c) 1 publisher as fast as it can → 5 v2 subscribers           throughput

Both relays get the same clients: (a)'s subscribers are seed (v1) clients, (b)'s and
(c)'s ask for ``"v":2``, which the naive relay ignores (it sends every subscriber the
bare ``data`` object, one frame per event; the load generator reads both forms).

Every relay and every load generator is its own process. With two or more cores, the
relay is pinned to one core and the load generator (and this script) to another, so
the relay never competes with its load; on one core nothing is pinned and the report
says so. The load generator is a minimal raw-asyncio WebSocket client (handshake, RFC
6455 framing, masked client frames with one random key per connection) on uvloop with
orjson, so that one core can offer and take 200,000 deliveries a second.

What a run measures, per scenario and relay:

- Publishers put ``time.monotonic_ns()`` (CLOCK_MONOTONIC is system-wide on Linux), a
  publisher id and a global event number ``g`` in ``data``. (a) and (b) publish at a
  fixed rate on an absolute schedule with evenly spread phases (1 ms timer grain); (c)
  publishes back to back in batches, waiting when the socket buffer is high or more
  than ``--inflight`` events are still on their way to the slowest subscriber.
- ~1 s of warm-up (not counted), then a window of ``--duration`` seconds, then up to
  ``--drain`` seconds for events still in flight. The events published in the window
  are the offered ones; each subscriber counts every one it receives, so a run
  reports delivered/offered, missing and duplicates exactly (a ``gap`` from dialjam
  counts as not delivered).
- latency = receive time − send time of each delivery of a window event that arrived
  (p50/p99/max). In (c) it is mostly queueing, bounded by ``--inflight`` / throughput;
- deliveries/s = deliveries the subscribers received during the window / window;
- relay CPU = utime+stime from /proc/PID/stat over the window, as % of one core (it
  includes the kernel's loopback work done on the relay's core). The load generator's
  own CPU is measured the same way; a run whose load generator was busy ≥ 90 % of its
  core (or fell > 50 ms behind its schedule) is marked ``!`` and explained under
  "notes", as is a run during which other processes used ≥ 10 % of a core (from
  /proc/stat): such noise shows first in the latency tail.

Targets (2-core machine): (a) 100 % delivered and p99 ≤ 1.5 ms; (b) 100 % delivered
and p99 ≤ 12 ms; (c) dialjam ≥ 4× the naive relay's deliveries/s. PASS/MISS is
printed; the exit code is 0 whatever the numbers (it is a measurement) and 1 when a
run failed (relay died, no connection, load generator error or timeout).

    python bench/relay_load.py [--scenario a|b|c ...] [--duration S] [--json FILE]
                               [--relay dialjam|naive ...] [--naive-uvloop]
    make bench BENCH_ARGS="--scenario b --json bench/results/b.json"

A default run (6 s windows) takes about a minute; every step has a time limit, and no
run starts past ``--time-limit`` (240 s) in all.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import hashlib
import json
import math
import os
import platform
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import orjson

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CHANNEL = "bench"
SATURATED_CPU_PCT = 90.0
OTHER_CPU_NOTE_PCT = 10.0
CONNECT_CONCURRENCY = 50
RELAY_START_S = 15.0  # longest wait for a relay to listen
RELAYS = ("dialjam", "naive")


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    publishers: int
    rate: float  # events a second per publisher; 0 = back to back
    subscribers: int
    v2: bool


SCENARIOS: dict[str, Scenario] = {
    "a": Scenario("a", "1000 pub x 2/s -> 5 subs", 1000, 2.0, 5, False),
    "b": Scenario("b", "50 pub x 20/s -> 200 v2 subs", 50, 20.0, 200, True),
    "c": Scenario("c", "1 pub flat out -> 5 v2 subs", 1, 0.0, 5, True),
}


# --- the load generator: a minimal WebSocket client --------------------------------

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HEAD2 = struct.Struct("!BB").pack
_HEAD4 = struct.Struct("!BBH").pack
_HEAD10 = struct.Struct("!BBQ").pack


class BenchError(Exception):
    """A run could not be measured (connection refused, handshake failed, timeout)."""


class WsClient(asyncio.Protocol):
    """A WebSocket client on a bare asyncio protocol: handshake, unmasked server frames
    in (text, ping, close, fragments), masked text frames out, write flow control."""

    def __init__(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed = False
        self.handshaking = True
        self.key = base64.b64encode(os.urandom(16))
        self.mask = os.urandom(4)
        self._mask_ints: dict[int, int] = {}
        self._buf = bytearray()
        self._need = 0
        self._frag: list[bytes] | None = None
        self._resume: asyncio.Future[None] | None = None
        self.paused = False
        self.reads = 0
        self.errors: list[str] = []

    # -- connection --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it.
        transport = self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=256 * 1024)
        transport.write(
            b"GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % (HOST.encode(), self.port, self.key)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(BenchError(f"connection lost during handshake: {exc}"))
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self._resume is not None and not self._resume.done():
            self._resume.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport's buffer is below its low-water mark."""
        if self.paused and not self.closed:
            self._resume = asyncio.get_running_loop().create_future()
            await self._resume

    def _handshake(self, data: bytes) -> bytes | None:
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self._buf[:end]).decode("latin-1")
        rest = bytes(self._buf[end + 4 :])
        self._buf.clear()
        self.handshaking = False
        lines = head.split("\r\n")
        expected = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest()).decode()
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        if " 101 " not in lines[0] + " " or headers.get("sec-websocket-accept") != expected:
            self.opened.set_exception(BenchError(f"WebSocket handshake refused: {lines[0]!r}"))
            assert self.transport is not None
            self.transport.close()
            return None
        self.opened.set_result(None)
        return rest

    # -- frames in --

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        if self.handshaking:
            rest = self._handshake(data)
            if not rest:
                return
            data = rest
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return
            data = bytes(self._buf)
            self._buf.clear()
        now = time.monotonic_ns()
        n = len(data)
        pos = 0
        while True:
            left = n - pos
            if left < 2:
                self._need = 2
                break
            b1 = data[pos + 1]
            size = b1 & 0x7F
            if size < 126:
                start = pos + 2
            elif size == 126:
                if left < 4:
                    self._need = 4
                    break
                size = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if left < 10:
                    self._need = 10
                    break
                size = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + size
            if end > n:
                self._need = end - pos
                break
            b0 = data[pos]
            try:
                if b0 == 0x81 and not b1 & 0x80:
                    self.on_text(data[start:end], now)
                else:
                    self._other_frame(b0, b1, data[start:end], now)
            except Exception as exc:  # a frame we cannot read: report it, read on
                if len(self.errors) < 5:
                    self.errors.append(f"{type(exc).__name__}: {exc} in {data[start:end][:120]!r}")
            pos = end
        if pos < n:
            self._buf += data[pos:]

    def _other_frame(self, b0: int, b1: int, payload: bytes, now: int) -> None:
        if b1 & 0x80:
            raise BenchError("the server sent a masked frame")
        opcode = b0 & 0x0F
        fin = b0 & 0x80
        if opcode == 0x9:  # ping
            self.send(payload, 0x8A)
        elif opcode == 0x8:  # close: answer and let the server end the connection
            if not self.closed:
                self.send(payload[:2], 0x88)
            self.closed = True
        elif opcode == 0x1:  # the first fragment of a text message
            self._frag = [payload]
        elif opcode == 0x0 and self._frag is not None:
            self._frag.append(payload)
            if fin:
                whole = b"".join(self._frag)
                self._frag = None
                self.on_text(whole, now)

    def on_text(self, payload: bytes, now: int) -> None:
        """A text message arrived (`now` is when its bytes reached this process)."""

    # -- frames out --

    def send(self, payload: bytes, first_byte: int = 0x81) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(self.frame(payload, first_byte))

    def frame(self, payload: bytes, first_byte: int = 0x81) -> bytes:
        """One masked client frame (RFC 6455 §5.3); the key is random per connection,
        so the relay does all the unmasking work a real client would cost it."""
        n = len(payload)
        if n < 126:
            head = _HEAD2(first_byte, 0x80 | n)
        elif n < 65536:
            head = _HEAD4(first_byte, 0xFE, n)
        else:
            head = _HEAD10(first_byte, 0xFF, n)
        mask = self._mask_ints.get(n)
        if mask is None:
            mask = int.from_bytes((self.mask * (n // 4 + 1))[:n], "little")
            self._mask_ints[n] = mask
        masked = (int.from_bytes(payload, "little") ^ mask).to_bytes(n, "little")
        return head + self.mask + masked

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self.send(struct.pack("!H", 1000), 0x88)
            self.transport.close()


class Tally:
    """What the subscribers share: the first event number of the window."""

    def __init__(self) -> None:
        self.g_lo = 1 << 62  # no event counts until the window opens


class Subscriber(WsClient):
    """Counts every event it receives by its number ``g`` and records the latency of
    every event of the window. Takes seed frames (the bare ``data`` object), v2
    envelopes and arrays of envelopes."""

    def __init__(self, port: int, tally: Tally, capacity: int) -> None:
        super().__init__(port)
        self.tally = tally
        self.seen = array("I", bytes(4 * capacity))
        self.latencies: list[int] = []
        self.received = 0
        self.frames = 0
        self.gaps = 0
        self.gap_events = 0
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_text(self, payload: bytes, now: int) -> None:
        obj = orjson.loads(payload)
        self.frames += 1
        seen = self.seen
        lo = self.tally.g_lo
        lat = self.latencies
        if obj.__class__ is list:
            received = 0
            for env in obj:
                data = env.get("data")
                if data is None:
                    self._control(env)
                    continue
                g = data["g"]
                try:
                    seen[g] += 1
                except IndexError:
                    seen = self._grow(g)
                if g >= lo:
                    lat.append(now - data["t"])
                received += 1
            self.received += received
            return
        data = obj.get("data", obj) if "type" in obj else obj
        g = data.get("g")
        if g is None:
            self._control(obj)
            return
        try:
            seen[g] += 1
        except IndexError:
            self._grow(g)
        if g >= lo:
            lat.append(now - data["t"])
        self.received += 1

    def _grow(self, g: int) -> array[int]:
        """Count event `g` beyond the end of `seen` (doubling it); returns `seen`."""
        seen = self.seen
        seen.extend(bytes(4 * max(len(seen), g + 1 - len(seen))))
        seen[g] += 1
        return seen

    def _control(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "subscribed":
            if not self.subscribed.done():
                self.subscribed.set_result(None)
        elif kind == "gap":
            self.gaps += 1
            self.gap_events += max(0, int(obj["to"]) - int(obj["from"]) + 1)
        elif len(self.errors) < 5:
            self.errors.append(orjson.dumps(obj).decode()[:200])


PUBLISH = (
    b'{"type":"publisher","id":"' + CHANNEL.encode() + b'","data":{"event":"digit",'
    b'"caller":"c-%06d","digit":"%d","source":"bench","p":%d,"g":%d,"t":%d}}'
)


class CpuClock:
    """utime+stime of the relay (from /proc) and of this process, in seconds."""

    def __init__(self, relay_pid: int) -> None:
        self.path = f"/proc/{relay_pid}/stat"
        self.tick = os.sysconf("SC_CLK_TCK")

    def relay(self) -> tuple[float, float]:
        with open(self.path, "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2 :].split()
        return int(fields[11]) / self.tick, int(fields[12]) / self.tick  # fields 14, 15

    @staticmethod
    def own() -> tuple[float, float]:
        t = os.times()
        return t.user, t.system

    def machine(self) -> float:
        """CPU seconds all processes (and interrupts) spent on every core so far."""
        with open("/proc/stat", "rb") as f:
            cpu = f.readline().split()
        # user nice system idle iowait irq softirq steal ...
        return sum(int(cpu[i]) for i in (1, 2, 3, 6, 7, 8)) / self.tick


@dataclass
class Window:
    """Counters read when the measurement window opens and closes."""

    t: float = 0.0
    relay_cpu: tuple[float, float] = (0.0, 0.0)  # user, system
    load_cpu: tuple[float, float] = (0.0, 0.0)
    machine_cpu: float = 0.0
    received: int = 0
    frames: int = 0
    reads: int = 0

    @classmethod
    def read(cls, clock: CpuClock, subs: Sequence[Subscriber]) -> Window:
        return cls(
            time.monotonic(),
            clock.relay(),
            clock.own(),
            clock.machine(),
            sum(s.received for s in subs),
            sum(s.frames for s in subs),
            sum(s.reads for s in subs),
        )


C = TypeVar("C", bound=WsClient)


async def connect_all(port: int, count: int, make: Callable[[], C], timeout: float) -> list[C]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> C:
        async with gate:
            _, proto = await loop.create_connection(make, HOST, port)
            await proto.opened
            return proto

    try:
        return await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), timeout)
    except TimeoutError:
        raise BenchError(f"could not open {count} connections in {timeout:g} s") from None


async def run_load(cfg: dict[str, Any]) -> dict[str, Any]:
    """The load generator's whole run; returns the raw counts for the orchestrator."""
    scn = SCENARIOS[cfg["scenario"]]
    port: int = cfg["port"]
    warmup: float = cfg["warmup"]
    duration: float = cfg["duration"]
    clock = CpuClock(cfg["relay_pid"])
    tally = Tally()
    if scn.rate:
        capacity = int(scn.publishers * scn.rate * (warmup + duration + 2) * 1.1) + 1000
    else:
        capacity = 1 << 20
    subs: list[Subscriber] = await connect_all(
        port, scn.subscribers, lambda: Subscriber(port, tally, capacity), cfg["connect_timeout"]
    )
    subscribe: dict[str, Any] = {"type": "subscriber", "id": CHANNEL}
    if scn.v2:
        subscribe["v"] = 2
    frame = orjson.dumps(subscribe)
    for s in subs:
        s.send(frame)
    pubs: list[WsClient] = await connect_all(
        port, scn.publishers, lambda: WsClient(port), cfg["connect_timeout"]
    )
    if scn.v2 and cfg["relay"] == "dialjam":
        try:
            await asyncio.wait_for(asyncio.gather(*(s.subscribed for s in subs)), 5.0)
        except TimeoutError:
            raise BenchError("not every v2 subscriber was told it is subscribed") from None

    # Probe until every subscriber hears from the channel (a seed relay sends no
    # "subscribed"); probe events are numbered like the others but precede the window.
    g = 0
    probe_until = time.monotonic() + 5.0
    while min(s.received for s in subs) == 0:
        if time.monotonic() > probe_until:
            raise BenchError("subscribers hear nothing from the relay")
        pubs[0].send(PUBLISH % (0, 0, 0, g, time.monotonic_ns()))
        g += 1
        await asyncio.sleep(0.02)

    gc.collect()
    gc.freeze()
    gc.disable()
    if scn.rate:
        g, g_lo, start, end, lag = await publish_at_rate(scn, pubs, subs, tally, clock, g, cfg)
    else:
        g, g_lo, start, end, lag = await publish_flat_out(pubs[0], subs, tally, clock, g, cfg)
    g_hi = g

    # Drain: until every subscriber has every window event, or the drain time is up.
    drain_until = time.monotonic() + cfg["drain"]
    waiting = list(subs)
    while waiting and time.monotonic() < drain_until:
        await asyncio.sleep(0.025)
        waiting = [s for s in waiting if s.seen[g_lo:g_hi].count(0)]
    drained = time.monotonic() - end.t
    gc.enable()

    delivered = duplicates = 0
    latencies: list[int] = []
    for s in subs:
        window = s.seen[g_lo:g_hi]
        if len(window) < g_hi - g_lo:
            window.extend(bytes(4 * (g_hi - g_lo - len(window))))
        got = len(window) - window.count(0)
        delivered += got
        duplicates += sum(window) - got
        latencies.extend(s.latencies)
    latencies.sort()
    errors = [e for c in (*subs, *pubs) for e in c.errors][:5]
    closed = sum(1 for c in (*subs, *pubs) if c.closed)
    for c in (*subs, *pubs):
        c.close()
    await asyncio.sleep(0.05)

    window_s = end.t - start.t
    events = g_hi - g_lo
    return {
        "window_s": window_s,
        "events": events,
        "offered": events * len(subs),
        "delivered": delivered,
        "duplicates": duplicates,
        "gaps": sum(s.gaps for s in subs),
        "gap_events": sum(s.gap_events for s in subs),
        "received_in_window": end.received - start.received,
        "frames_in_window": end.frames - start.frames,
        "reads_in_window": end.reads - start.reads,
        "latency_ms": percentiles(latencies),
        "relay_user_s": end.relay_cpu[0] - start.relay_cpu[0],
        "relay_sys_s": end.relay_cpu[1] - start.relay_cpu[1],
        "load_user_s": end.load_cpu[0] - start.load_cpu[0],
        "load_sys_s": end.load_cpu[1] - start.load_cpu[1],
        "machine_cpu_s": end.machine_cpu - start.machine_cpu,
        "sched_lag_ms": lag,
        "drain_s": drained,
        "client_errors": errors,
        "closed_by_relay": closed,
    }


async def publish_at_rate(
    scn: Scenario,
    pubs: list[WsClient],
    subs: list[Subscriber],
    tally: Tally,
    clock: CpuClock,
    g: int,
    cfg: dict[str, Any],
) -> tuple[int, int, Window, Window, float]:
    """Event j goes out at t0 + j·spacing from publisher j mod n: every publisher at
    its rate, phases evenly spread, on an absolute schedule (late sends catch up, the
    schedule never drifts). Returns (next g, first g of the window, window counters at
    open and close, worst lateness in ms)."""
    n = len(pubs)
    spacing = 1.0 / (scn.rate * n)
    j_lo = math.ceil(cfg["warmup"] / spacing)
    j_hi = j_lo + math.ceil(cfg["duration"] / spacing)
    g0 = g
    t0 = time.monotonic() + 0.01
    j = 0
    start = end = Window()
    opened = False
    max_lag = 0.0
    sleep = asyncio.sleep
    mono = time.monotonic
    mono_ns = time.monotonic_ns
    while j < j_hi:
        now = mono()
        due = min(j_hi, math.floor((now - t0) / spacing) + 1)
        if due > j:
            max_lag = max(max_lag, now - (t0 + j * spacing))
            if not opened and due > j_lo:
                # The window opens with event j_lo: count from here on.
                for k in range(j, j_lo):
                    pub = k % n
                    pubs[pub].send(PUBLISH % (pub, k % 10, pub, g0 + k, mono_ns()))
                j = j_lo
                tally.g_lo = g0 + j_lo
                start = Window.read(clock, subs)
                opened = True
            for k in range(j, due):
                pub = k % n
                pubs[pub].send(PUBLISH % (pub, k % 10, pub, g0 + k, mono_ns()))
            j = due
        if j >= j_hi:
            break
        delay = t0 + j * spacing - mono()
        # uvloop's timers have a 1 ms grain; a shorter sleep would spin.
        await sleep(max(delay, 0.001) if delay > 0 else 0)
    end = Window.read(clock, subs)
    return g0 + j_hi, g0 + j_lo, start, end, max_lag * 1000


async def publish_flat_out(
    pub: WsClient,
    subs: list[Subscriber],
    tally: Tally,
    clock: CpuClock,
    g: int,
    cfg: dict[str, Any],
) -> tuple[int, int, Window, Window, float]:
    """Back to back, in batches: wait whenever the socket buffer is high or more than
    `inflight` events have not yet reached the slowest subscriber."""
    batch = cfg["batch"]
    inflight = cfg["inflight"]
    t_start = time.monotonic() + cfg["warmup"]
    t_end = t_start + cfg["duration"]
    g_lo = -1
    start = Window()
    frame = pub.frame
    mono_ns = time.monotonic_ns
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        if g_lo < 0 and now >= t_start:
            g_lo = tally.g_lo = g
            start = Window.read(clock, subs)
        if g - min(s.received for s in subs) > inflight:
            await asyncio.sleep(0.001)
            continue
        t = mono_ns()
        assert pub.transport is not None
        pub.transport.write(
            b"".join([frame(PUBLISH % (0, k % 10, 0, k, t)) for k in range(g, g + batch)])
        )
        g += batch
        if pub.paused:
            await pub.drain()
        else:
            await asyncio.sleep(0)
    end = Window.read(clock, subs)
    return g, g_lo, start, end, 0.0


def percentiles(sorted_ns: list[int]) -> dict[str, float | None]:
    if not sorted_ns:
        return {"p50": None, "p99": None, "max": None}

    def at(q: float) -> float:
        return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6

    return {"p50": at(0.50), "p99": at(0.99), "max": sorted_ns[-1] / 1e6}


def worker_main(cfg_json: str) -> int:
    """The load process: run one scenario against one relay, print JSON on stdout."""
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    cfg = json.loads(cfg_json)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result = runner.run(run_load(cfg))
    except (BenchError, OSError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result))
    return 0


# --- the orchestrator ----------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    relay: str
    window_s: float = 0.0
    offered_per_s: float = 0.0
    events: int = 0
    offered: int = 0
    delivered: int = 0
    missing: int = 0
    duplicates: int = 0
    gaps: int = 0
    delivered_pct: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    deliveries_per_s: float = 0.0
    relay_cpu_pct: float = 0.0
    relay_sys_pct: float = 0.0
    relay_us_per_delivery: float | None = None
    frames_per_s: float = 0.0
    deliveries_per_frame: float | None = None
    load_cpu_pct: float = 0.0
    load_sys_pct: float = 0.0
    other_cpu_pct: float = 0.0
    sched_lag_ms: float = 0.0
    load_saturated: bool = False
    wall_s: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Pinning:
    """The relay on one core, the load generator and this script on another; children
    inherit the affinity of this process at fork, so it is set around each spawn."""

    def __init__(self) -> None:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.relay_cpu: int | None = cpus[0] if len(cpus) >= 2 else None
        self.load_cpu: int | None = cpus[1] if len(cpus) >= 2 else None
        self.all = set(cpus)
        if self.load_cpu is not None:
            os.sched_setaffinity(0, {self.load_cpu})

    def describe(self) -> str:
        if self.relay_cpu is None:
            return "not pinned (fewer than 2 cores available): relay and load share the CPU"
        return f"relay on CPU {self.relay_cpu}, load generator on CPU {self.load_cpu}"

    @contextlib.contextmanager
    def on(self, cpu: int | None) -> Iterator[None]:
        if cpu is None:
            yield
            return
        os.sched_setaffinity(0, {cpu})
        try:
            yield
        finally:
            os.sched_setaffinity(0, {self.load_cpu} if self.load_cpu is not None else self.all)


def relay_command(kind: str, port: int, naive_uvloop: bool) -> list[str]:
    where = ["--host", HOST, "--port", str(port)]
    if kind == "dialjam":
        return [sys.executable, "-m", "relay", *where, "--log-level", "WARNING"]
    naive = [sys.executable, str(ROOT / "bench" / "naive_relay.py"), *where]
    return [*naive, "--uvloop"] if naive_uvloop else naive


def relay_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALJAM_")}
    # The load comes from one address (scenario a: 1,005 sockets from 127.0.0.1): no cap.
    env.update(
        DIALJAM_RATE="0",
        DIALJAM_QUEUE="100000",
        DIALJAM_CONNECTIONS_PER_ADDRESS="0",
        # A rehearsal relay on loopback: anonymous clients publish, as the baseline's do.
        DIALJAM_OPEN="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise BenchError(f"relay exited with code {proc.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(f"relay did not listen on {HOST}:{port} within {timeout:g} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(3.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3.0)


def tail(f: IO[bytes], limit: int = 600) -> str:
    f.seek(0)
    text = f.read().decode(errors="replace").strip()
    return text[-limit:]


def run_one(
    scn: Scenario, kind: str, args: argparse.Namespace, pin: Pinning, deadline: float
) -> Result:
    result = Result(scn.key, kind)
    port = free_port()
    began = time.monotonic()
    # Connections, subscription and probes (each phase bounded in the load generator),
    # warm-up, window, drain, then counting and teardown.
    budget = args.connect_timeout * 2 + 10 + args.warmup + args.duration + args.drain + 10
    budget = min(budget, deadline - began - RELAY_START_S - 5)
    if budget < args.warmup + args.duration + 5:
        result.error = f"skipped: not enough of --time-limit {args.time_limit:g} s left"
        return result
    with tempfile.TemporaryFile() as relay_log:
        with pin.on(pin.relay_cpu):
            relay = subprocess.Popen(
                relay_command(kind, port, args.naive_uvloop),
                cwd=ROOT,
                env=relay_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # the announcement (with this run's tokens)
                stderr=relay_log,
            )
        worker: subprocess.Popen[bytes] | None = None
        try:
            wait_for_port(port, relay, RELAY_START_S)
            cfg = {
                "scenario": scn.key,
                "relay": kind,
                "port": port,
                "relay_pid": relay.pid,
                "warmup": args.warmup,
                "duration": args.duration,
                "drain": args.drain,
                "connect_timeout": args.connect_timeout,
                "inflight": args.inflight,
                "batch": args.batch,
            }
            with pin.on(pin.load_cpu):
                worker = subprocess.Popen(
                    [sys.executable, __file__, "--worker", json.dumps(cfg)],
                    cwd=ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            try:
                out, err = worker.communicate(timeout=budget)
            except subprocess.TimeoutExpired:
                raise BenchError(f"load generator took over {budget:g} s") from None
            lines = out.decode(errors="replace").strip().splitlines()
            try:
                raw = json.loads(lines[-1])
            except (IndexError, ValueError):
                raise BenchError(
                    f"load generator failed (exit {worker.returncode}): "
                    + err.decode(errors="replace").strip()[-800:]
                ) from None
            if "error" in raw:
                raise BenchError(raw["error"])
            if relay.poll() is not None:
                raise BenchError(f"relay exited with code {relay.returncode} during the run")
            fill(result, raw)
        except BenchError as exc:
            result.error = str(exc)
            log = tail(relay_log)
            if log:
                result.error += f"\n    relay output: {log}"
        finally:
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait()
            stop(relay)
    result.wall_s = time.monotonic() - began
    return result


def fill(r: Result, raw: dict[str, Any]) -> None:
    w = raw["window_s"]
    r.window_s = w
    r.events = raw["events"]
    r.offered = raw["offered"]
    r.offered_per_s = r.offered / w
    r.delivered = raw["delivered"]
    r.duplicates = raw["duplicates"]
    r.missing = r.offered - r.delivered
    r.gaps = raw["gaps"]
    r.delivered_pct = 100.0 * r.delivered / r.offered if r.offered else 0.0
    lat = raw["latency_ms"]
    r.p50_ms, r.p99_ms, r.max_ms = lat["p50"], lat["p99"], lat["max"]
    r.deliveries_per_s = raw["received_in_window"] / w
    relay_cpu = raw["relay_user_s"] + raw["relay_sys_s"]
    r.relay_cpu_pct = 100.0 * relay_cpu / w
    r.relay_sys_pct = 100.0 * raw["relay_sys_s"] / w
    if raw["received_in_window"]:
        r.relay_us_per_delivery = 1e6 * relay_cpu / raw["received_in_window"]
        r.deliveries_per_frame = raw["received_in_window"] / max(1, raw["frames_in_window"])
    r.frames_per_s = raw["frames_in_window"] / w
    load_cpu = raw["load_user_s"] + raw["load_sys_s"]
    r.load_cpu_pct = 100.0 * load_cpu / w
    r.load_sys_pct = 100.0 * raw["load_sys_s"] / w
    r.other_cpu_pct = max(0.0, 100.0 * (raw["machine_cpu_s"] - relay_cpu - load_cpu) / w)
    r.sched_lag_ms = raw["sched_lag_ms"]
    r.load_saturated = r.load_cpu_pct >= SATURATED_CPU_PCT or r.sched_lag_ms > 50.0
    if r.load_saturated and r.relay_cpu_pct >= SATURATED_CPU_PCT:
        r.notes.append(
            f"load generator near saturation too (CPU {r.load_cpu_pct:.0f} %, schedule lag "
            f"{r.sched_lag_ms:.1f} ms) with the relay at {r.relay_cpu_pct:.0f} %: the relay "
            "is at its limit, and latency includes some queueing in the load generator"
        )
    elif r.load_saturated:
        r.notes.append(
            f"load generator saturated (CPU {r.load_cpu_pct:.0f} %, schedule lag "
            f"{r.sched_lag_ms:.1f} ms) with the relay at {r.relay_cpu_pct:.0f} %: these "
            "numbers are bounded by the load generator, not the relay"
        )
    if r.other_cpu_pct >= OTHER_CPU_NOTE_PCT:
        r.notes.append(
            f"other processes used {r.other_cpu_pct:.0f} % of a core during the window: "
            "expect noise, above all in the latency tail"
        )
    if r.missing:
        r.notes.append(
            f"{r.missing} deliveries missing after {raw['drain_s']:.1f} s of drain"
            + (f" ({raw['gap_events']} reported in {r.gaps} gap frames)" if r.gaps else "")
        )
    if r.duplicates:
        r.notes.append(f"{r.duplicates} duplicate deliveries")
    if raw["closed_by_relay"]:
        r.notes.append(f"the relay closed {raw['closed_by_relay']} connections during the run")
    for e in raw["client_errors"]:
        r.notes.append(f"a client got: {e}")


# --- the report ----------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[Result]) -> str:
    head = (
        "scenario",
        "relay",
        "offered/s",
        "delivered %",
        "p50 ms",
        "p99 ms",
        "max ms",
        "deliveries/s",
        "relay CPU %",
        "load CPU %",
    )
    rows = [head]
    for r in results:
        if r.error:
            rows.append((r.scenario, r.relay, "ERROR", "", "", "", "", "", "", ""))
            continue
        rows.append(
            (
                r.scenario,
                r.relay,
                f"{r.offered_per_s:,.0f}",
                f"{r.delivered_pct:.3f}",
                fmt(r.p50_ms, ".2f"),
                fmt(r.p99_ms, ".2f"),
                fmt(r.max_ms, ".1f"),
                f"{r.deliveries_per_s:,.0f}",
                f"{r.relay_cpu_pct:.0f}",
                f"{r.load_cpu_pct:.0f}" + ("!" if r.load_saturated else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(" | ".join(cells))
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.3g}x"


def checks(results: list[Result]) -> list[dict[str, Any]]:
    by = {(r.scenario, r.relay): r for r in results if not r.error}
    out: list[dict[str, Any]] = []
    for key, p99_limit in (("a", 1.5), ("b", 12.0)):
        r = by.get((key, "dialjam"))
        if r is None:
            continue
        ok = r.missing == 0 and r.duplicates == 0 and r.p99_ms is not None
        ok = ok and r.p99_ms is not None and r.p99_ms <= p99_limit
        out.append(
            {
                "scenario": key,
                "target": f"100 % delivered, p99 <= {p99_limit:g} ms",
                "measured": f"{r.delivered_pct:.3f} % delivered, p99 {fmt(r.p99_ms, '.2f')} ms",
                "pass": ok,
            }
        )
    d, n = by.get(("c", "dialjam")), by.get(("c", "naive"))
    if d is not None and n is not None and n.deliveries_per_s:
        x = d.deliveries_per_s / n.deliveries_per_s
        out.append(
            {
                "scenario": "c",
                "target": ">= 4x the naive relay's deliveries/s",
                "measured": f"{x:.2f}x ({d.deliveries_per_s:,.0f} vs {n.deliveries_per_s:,.0f})",
                "pass": x >= 4.0,
            }
        )
    return out


def report(results: list[Result], pin: Pinning, elapsed: float) -> str:
    ok = [r for r in results if not r.error]
    by = {(r.scenario, r.relay): r for r in ok}
    keys = list(dict.fromkeys(r.scenario for r in results))
    lines = [f"dialjam relay benchmark — {pin.describe()}", ""]
    lines += [f"  ({key}) {SCENARIOS[key].title}" for key in keys]
    lines += ["", table(results)]
    pairs = [(key, by.get((key, "dialjam")), by.get((key, "naive"))) for key in keys]
    ratios = [(key, d, n) for key, d, n in pairs if d is not None and n is not None]
    if ratios:
        lines += ["", "dialjam/naive ratios:"]
    for key, d, n in ratios:
        lines.append(
            f"  ({key}) deliveries/s {ratio(d.deliveries_per_s, n.deliveries_per_s)}"
            f"  p50 {ratio(d.p50_ms, n.p50_ms)}  p99 {ratio(d.p99_ms, n.p99_ms)}"
            f"  relay CPU per delivery "
            f"{ratio(d.relay_us_per_delivery, n.relay_us_per_delivery)}"
            f" ({fmt(d.relay_us_per_delivery, '.2f')} vs "
            f"{fmt(n.relay_us_per_delivery, '.2f')} us)"
        )
    verdicts = checks(results)
    if verdicts:
        lines += ["", "targets (dialjam):"]
    for c in verdicts:
        verdict = "PASS" if c["pass"] else "MISS"
        lines.append(f"  {verdict}  ({c['scenario']}) {c['target']}: {c['measured']}")
    lines += ["", "notes:"]
    lines += [f"  ({r.scenario}) {r.relay}: {n}" for r in results for n in r.notes]
    lines += [f"  ({r.scenario}) {r.relay}: ERROR {r.error}" for r in results if r.error]
    if any(r.load_saturated for r in ok):
        lines.append("  '!' = the load generator was (nearly) saturated in that run")
    elif ok:
        lines.append("  the load generator was not saturated in any run")
    windows = sorted({f"{r.window_s:.1f}" for r in ok})
    lines += ["", f"window {'/'.join(windows) or '-'} s per run; total {elapsed:.0f} s"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Load benchmark: dialjam relay vs a naive aiohttp relay (see the docstring)."
    )
    p.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (repeatable; default: a, b and c)",
    )
    p.add_argument(
        "--relay", action="append", choices=RELAYS, help="run only this relay (repeatable)"
    )
    p.add_argument("--duration", type=float, default=6.0, help="window per run, s (default 6)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up per run, s (default 1)")
    p.add_argument("--drain", type=float, default=2.0, help="longest drain, s (default 2)")
    p.add_argument("--json", metavar="FILE", help="also save the results as JSON")
    p.add_argument(
        "--inflight",
        type=int,
        default=1024,
        help="(c) most events on their way to the slowest subscriber (default 1024)",
    )
    p.add_argument("--batch", type=int, default=32, help="(c) frames per write (default 32)")
    p.add_argument("--naive-uvloop", action="store_true", help="run the naive relay on uvloop too")
    p.add_argument(
        "--time-limit",
        type=float,
        default=240.0,
        help="stop starting runs past this many seconds in all (default 240)",
    )
    p.add_argument("--connect-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 0.5 <= args.duration <= 120 or not 0 <= args.warmup <= 30 or not 0 < args.drain <= 30:
        p.error("--duration must be 0.5–120 s, --warmup 0–30 s, --drain up to 30 s")
    if args.inflight < args.batch or args.batch < 1:
        p.error("--batch must be at least 1 and --inflight at least --batch")
    return args


def raise_fd_limit() -> None:
    """1,000 publishers need more descriptors than a default soft limit of 1,024; the
    relays and load generator inherit this."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    if sys.platform != "linux":
        print("relay_load.py needs Linux (/proc, CLOCK_MONOTONIC across processes)")
        return 2
    raise_fd_limit()
    pin = Pinning()
    scenarios = args.scenario or sorted(SCENARIOS)
    relays = args.relay or list(RELAYS)
    began = time.monotonic()
    deadline = began + args.time_limit
    results: list[Result] = []
    print(f"dialjam relay benchmark: {pin.describe()}", file=sys.stderr)
    for key in dict.fromkeys(scenarios):
        for kind in dict.fromkeys(relays):
            print(f"  ({key}) {SCENARIOS[key].title}: {kind} …", end="", file=sys.stderr)
            sys.stderr.flush()
            r = run_one(SCENARIOS[key], kind, args, pin, deadline)
            results.append(r)
            status = "error" if r.error else f"{r.deliveries_per_s:,.0f} deliveries/s"
            print(f" {status} ({r.wall_s:.1f} s)", file=sys.stderr)
    elapsed = time.monotonic() - began
    print(report(results, pin, elapsed))
    if args.json:
        doc = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "pinning": pin.describe(),
            },
            "settings": {
                k: getattr(args, k)
                for k in ("duration", "warmup", "drain", "inflight", "batch", "naive_uvloop")
            },
            "results": [asdict(r) for r in results],
            "checks": checks(results),
            "elapsed_s": elapsed,
        }
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
