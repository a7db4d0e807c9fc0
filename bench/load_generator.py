"""The relay benchmark's load generator: one process, pinned to its own core, that
opens the scenario's publishers and subscribers, publishes on a schedule (or flat out),
counts every delivery by event number and prints the raw counts as JSON.

    python -m bench.load_generator CONFIG_JSON     (bench/relay_load.py runs it)
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from bench.procs import CpuClock
from bench.scenarios import CHANNEL, SCENARIOS, Scenario
from bench.stats import summary_ms
from bench.wsclient import BenchError, C, WsClient, connect_all, read_frame


class WindowMark:
    """What the subscribers share: the first event number of the window."""

    def __init__(self) -> None:
        self.g_lo = 1 << 62  # no event counts until the window opens


class CountingSubscriber(WsClient):
    """Counts every event it receives by its number ``g`` and records the latency of
    every event of the window. Takes seed frames (the bare ``data`` object), v2
    envelopes and arrays of envelopes."""

    def __init__(self, port: int, mark: WindowMark, capacity: int) -> None:
        super().__init__(port)
        self.mark = mark
        self.seen = array("I", bytes(4 * capacity))
        self.latencies: list[int] = []
        self.received = 0
        self.frames = 0
        self.gaps = 0
        self.gap_events = 0
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_text(self, payload: bytes, now: int) -> None:
        events, controls = read_frame(orjson.loads(payload))
        self.frames += 1
        seen = self.seen
        lo = self.mark.g_lo
        lat = self.latencies
        for env in events:
            data = env["data"]
            g = data["g"]
            try:
                seen[g] += 1
            except IndexError:
                seen = self._grow(g)
            if g >= lo:
                lat.append(now - data["t"])
        self.received += len(events)
        for obj in controls:
            self._control(obj)

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
    def read(cls, clock: CpuClock, subs: Sequence[CountingSubscriber]) -> Window:
        return cls(
            time.monotonic(),
            clock.relay(),
            clock.own(),
            clock.machine(),
            sum(s.received for s in subs),
            sum(s.frames for s in subs),
            sum(s.reads for s in subs),
        )


async def spread(ports: list[int], count: int, make: Callable[[int], C], timeout: float) -> list[C]:
    """`count` connections dealt out over `ports` in turn (all on one when one)."""
    shares = [count // len(ports) + (i < count % len(ports)) for i in range(len(ports))]
    groups = await asyncio.gather(
        *(connect_all(p, n, partial(make, p), timeout) for p, n in zip(ports, shares, strict=True))
    )
    return [c for group in groups for c in group]


async def run_load(cfg: dict[str, Any]) -> dict[str, Any]:
    """The load generator's whole run; returns the raw counts for the orchestrator."""
    scn = SCENARIOS[cfg["scenario"]]
    port: int = cfg["port"]
    # Several relays sharing the channels (--backplane): subscribers and publishers are
    # dealt out over them in turn.
    ports: list[int] = cfg.get("ports") or [port]
    warmup: float = cfg["warmup"]
    duration: float = cfg["duration"]
    clock = CpuClock(cfg["relay_pid"], *cfg.get("more_pids", ()))
    mark = WindowMark()
    if scn.rate:
        capacity = int(scn.publishers * scn.rate * (warmup + duration + 2) * 1.1) + 1000
    else:
        capacity = 1 << 20
    subs: list[CountingSubscriber] = await spread(
        ports,
        scn.subscribers,
        lambda p: CountingSubscriber(p, mark, capacity),
        cfg["connect_timeout"],
    )
    subscribe: dict[str, Any] = {"type": "subscriber", "id": CHANNEL}
    if scn.v2:
        subscribe["v"] = 2
    frame = orjson.dumps(subscribe)
    for s in subs:
        s.send(frame)
    pubs: list[WsClient] = await spread(ports, scn.publishers, WsClient, cfg["connect_timeout"])
    if scn.v2 and cfg["relay"] in ("dialjam", "dialjam-redis"):
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
        g, g_lo, start, end, lag = await publish_at_rate(scn, pubs, subs, mark, clock, g, cfg)
    else:
        g, g_lo, start, end, lag = await publish_flat_out(pubs[0], subs, mark, clock, g, cfg)
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
        "latency_ms": summary_ms(latencies),
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
    subs: list[CountingSubscriber],
    mark: WindowMark,
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
                mark.g_lo = g0 + j_lo
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
    subs: list[CountingSubscriber],
    mark: WindowMark,
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
            g_lo = mark.g_lo = g
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


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1]))
