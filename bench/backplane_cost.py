#!/usr/bin/env python3
"""What the Redis backplane (``relay/backplane.py``) costs one relay, in CPU an event.

``.venv/bin/python bench/backplane_cost.py [--events N] [--rate R] [--json FILE]``
starts a redis-server on a free port of 127.0.0.1 (no snapshots) and, in this one
process, a relay's fan-out with its backplane, and publishes keypad digits at a
festival's pace for one relay (``--rate``, 1,000 a second: two relays sharing 2,000),
strictly one at a time (the next once the last is back: so each event pays for a whole
round of its own, as at a quiet moment, however busy the machine), each from a
connection's outbox, on the relay's event loop (uvloop where installed). Every event
goes the whole way: packed, sent, run by the Lua script, acknowledged, published back,
parsed and applied to the relay's fan-out. The process's CPU time (Redis's is
not in it) over the events gives µs an event, for:

- the in-memory fan-out alone (no backplane): the baseline, in the same run;
- the backplane with redis-py's own reply parser (pure Python);
- the backplane with hiredis's parser (C), when the hiredis package is installed
  (redis-py then uses it by default).

Wall-clock latencies (publish → ack, publish → applied) are printed too, as p50/p99;
on a shared machine they are noise first. The exit code is 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from redis._parsers import _AsyncRESP2Parser

from bench.procs import redis_server
from bench.stats import load, percentile, write_result
from relay.backplane import RedisBackplane
from relay.fanout import FanOut
from relay.protocol import dumps
from relay.runtime import event_loop_factory

HOST = "127.0.0.1"
LABELS = {
    "in_memory": "in memory (no backplane)",
    "python_parser": "redis-py (Python parser)",
    "hiredis": "redis-py + hiredis (C parser)",
}
CHANNEL = "dialjam"


def digit(n: int) -> bytes:
    caller = f"c-{n % 1000:010x}"
    return dumps({"event": "digit", "caller": caller, "digit": str(n % 10), "source": "web"})


async def paced(events: int, rate: float, publish: Any) -> None:
    """Call `publish(n)` `events` times at `rate` a second, one at a time: each the
    next only once the last is through (what it returns, when awaitable, is awaited),
    so every event costs one whole round of its own, however busy the machine."""
    start = time.perf_counter()
    for n in range(events):
        due = start + n / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        done = publish(n)
        if done is not None:
            await done


async def in_memory(events: int, rate: float) -> dict[str, Any]:
    hub = FanOut(pinned=[CHANNEL])
    origin = hub.open("bench")
    cpu = time.process_time()

    def publish(n: int) -> None:
        hub.publish(CHANNEL, {"event": "digit", "digit": str(n % 10)}, time.monotonic(),
                    time.time_ns() // 1_000_000, origin)  # fmt: skip

    await paced(events, rate, publish)
    used = time.process_time() - cpu
    return {"us_per_event": used / events * 1e6}


async def through_redis(url: str, events: int, rate: float, parser: Any) -> dict[str, Any]:
    hub = FanOut(pinned=[CHANNEL])
    backplane = RedisBackplane(url, hub, caller_rate=1000.0, parser_class=parser)
    await backplane.start()
    assert backplane.listening, backplane.error
    origins = [hub.open(f"bench-{i}") for i in range(64)]
    sent: dict[int, float] = {}
    acked: list[float] = []
    applied: list[float] = []
    done = asyncio.Event()
    base = hub.channels[CHANNEL].seq

    def on_apply(seq: int) -> None:
        t = sent.pop(seq - base, None)
        if t is not None:
            applied.append(time.perf_counter() - t)
            arrived.pop(seq - base).set()
        if len(applied) == events:
            done.set()

    real_apply = hub.apply

    def apply(*args: Any, **kw: Any) -> Any:
        ch = real_apply(*args, **kw)
        on_apply(args[2])
        return ch

    hub.apply = apply  # type: ignore[method-assign]

    arrived: dict[int, asyncio.Event] = {}

    def publish(n: int) -> Any:
        t = time.perf_counter()
        sent[n + 1] = t
        fut = backplane.publish(CHANNEL, digit(n), None, origins[n % 64], f"c-{n % 1000:010x}")
        fut.add_done_callback(lambda _f: acked.append(time.perf_counter() - t))
        arrived[n + 1] = here = asyncio.Event()
        return here.wait()

    cpu = time.process_time()
    await paced(events, rate, publish)
    await asyncio.wait_for(done.wait(), 30.0)
    used = time.process_time() - cpu
    await backplane.stop()
    acked.sort()
    applied.sort()
    return {
        "us_per_event": used / events * 1e6,
        "ack_p50_ms": percentile(acked, 0.5) * 1e3,
        "ack_p99_ms": percentile(acked, 0.99) * 1e3,
        "applied_p50_ms": percentile(applied, 0.5) * 1e3,
        "applied_p99_ms": percentile(applied, 0.99) * 1e3,
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    parsers: dict[str, Any] = {"python_parser": _AsyncRESP2Parser}
    try:
        from redis._parsers import _AsyncHiredisParser
        from redis.utils import HIREDIS_AVAILABLE

        if HIREDIS_AVAILABLE:
            parsers["hiredis"] = _AsyncHiredisParser
    except ImportError:
        pass
    figures: dict[str, Any] = {}
    with redis_server() as (url, _):
        for round_ in range(args.rounds):
            runs: list[tuple[str, Any]] = [("in_memory", None), *parsers.items()]
            for name, parser in runs:
                if parser is None:
                    got = await in_memory(args.events, args.rate)
                else:
                    got = await through_redis(url, args.events, args.rate, parser)
                best = figures.get(name)
                # The least CPU of the rounds: what the code costs, others' load aside.
                if best is None or got["us_per_event"] < best["us_per_event"]:
                    figures[name] = got
                print(f"  round {round_ + 1} {LABELS[name]}: {got['us_per_event']:.1f} µs an event")
    return figures


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=5000, help="events a run (default 5000)")
    p.add_argument("--rate", type=float, default=1000.0, help="a second (default 1000)")
    p.add_argument("--rounds", type=int, default=3, help="runs of each, best kept (3)")
    p.add_argument("--json", metavar="FILE", help="also save the results as JSON")
    args = p.parse_args()
    load_at_start = load()
    # The relay's own event loop (uvloop where installed), as `python -m relay` runs.
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        figures = runner.run(measure(args))
    base = figures["in_memory"]["us_per_event"]
    print(f"\n{args.events} keypad digits at {args.rate:g}/s, one at a time; least CPU of "
          f"{args.rounds} rounds")  # fmt: skip
    print(f"{'':32} µs CPU/event  backplane's µs  ack p50/p99 ms  applied p50/p99 ms")
    for name, got in figures.items():
        extra = got["us_per_event"] - base
        got["backplane_us_per_event"] = extra
        lat = (
            f"{got['ack_p50_ms']:6.2f}/{got['ack_p99_ms']:<6.2f}  "
            f"{got['applied_p50_ms']:6.2f}/{got['applied_p99_ms']:<6.2f}"
            if "ack_p50_ms" in got
            else ""
        )
        print(f"{LABELS[name]:32} {got['us_per_event']:12.1f}  {extra:14.1f}  {lat}")
    if "hiredis" in figures:
        ratio = figures["python_parser"]["backplane_us_per_event"] / max(
            1e-9, figures["hiredis"]["backplane_us_per_event"]
        )
        print(f"hiredis: the backplane's CPU an event ÷ {ratio:.2f}")
    if args.json:
        settings = {"events": args.events, "rate": args.rate, "rounds": args.rounds}
        write_result(args.json, "backplane_cost", load_at_start, settings, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
