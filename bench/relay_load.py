#!/usr/bin/env python3
"""Load benchmark for the relay: dialjam against a naive per-message aiohttp relay.

``make bench`` (or ``python bench/relay_load.py``) runs three scenarios over loopback,
each against fresh relays, one after the other:

  (a) 1,000 publishers × 2 events/s → 5 plain (v1) subscribers   10,000 deliveries/s
  (b) 50 publishers × 20 events/s → 200 v2 subscribers           200,000 deliveries/s
  (c) 1 publisher as fast as it can → 5 v2 subscribers           throughput

The relays (bench/scenarios.py, RELAYS; every one with ``DIALJAM_OPEN=1``, a rehearsal
relay on loopback, so anonymous clients publish as the baseline's do):

- ``dialjam``, tuned: ``python -m relay`` with ``DIALJAM_RATE=0``,
  ``DIALJAM_QUEUE=100000`` and ``DIALJAM_CONNECTIONS_PER_ADDRESS=0`` (no rate limit, no
  cap for the one address the load comes from, nothing dropped unless truly
  overloaded). Every scenario.
- ``dialjam-defaults``: the shipped settings (send queue 2,048 events, 20 frames/s a
  connection, 500 connections an address). Scenario (b) only: (a)'s 1,005 sockets
  from one address and (c)'s flat-out publisher are refused by those limits, as they
  should be.
- ``naive``: ``bench/naive_relay.py``, ``for ws in subscribers: await
  ws.send_str(json.dumps(data))`` on asyncio's loop with the stdlib json module, the
  relay people write;
- ``naive-uvloop``: the same code on uvloop with orjson, the loop and JSON library
  dialjam gets, so a ratio against it measures the design, not the libraries. The
  dialjam/naive ratios are taken against this one; ``naive`` is printed beside it.

All get the same clients: (a)'s subscribers are seed (v1) clients, (b)'s and
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
and p99 ≤ 12 ms, tuned and at the shipped defaults; (c) dialjam ≥ 4× the deliveries/s
of the naive relay on uvloop and orjson. PASS/MISS is printed; the exit code is 0
whatever the numbers (it is a measurement) and 1 when a run failed (relay died, no
connection, load generator error or timeout).

    python bench/relay_load.py [--scenario a|b|c ...] [--relay KEY ...] [--duration S]
                               [--compare CHECKOUT ...] [--json FILE]
    make bench          (saves bench/results/relay_load.json; bench/report.py puts
                         it in the README)

``--compare ../other-checkout`` also runs that checkout's relay (tuned) in every
scenario, side by side with this one's in the same run: how a change to the relay
measures against the code it changes.

``--backplane`` also runs ``dialjam-redis``: two tuned relays sharing the channels
through a redis-server this script starts (relay/backplane.py), the load dealt out
over them (subscribers and publishers in turn), beside the one tuned relay in the
same run (``--relay dialjam --backplane`` runs just those two), in (a) the festival,
(b) the fan-out to 200 and (d) one publisher flat out to 200 v2 subscribers. The first
relay shares the relay's core, the second the load generator's; their CPU and
Redis's are counted together as the relay's. Targets: (a) p99 at most 2 ms over the
one relay's, 100 % delivered; (b) 100 % delivered; (d) at least 1.6x the one relay's
deliveries/s.

A default run (10 runs of 6 s windows) takes about two and a half minutes; every step
has a time limit, and no run starts past ``--time-limit`` (360 s) in all.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from bench.procs import Pinning, free_port, raise_fd_limit, redis_server, stop, tail, wait_for_port
from bench.relay_load_report import Result, checks, fill, report
from bench.scenarios import BACKPLANE, RELAYS, ROOT, SCENARIOS, Relay, Scenario, checkout
from bench.stats import load, write_result
from bench.wsclient import HOST, BenchError

RELAY_START_S = 15.0  # longest wait for a relay to listen


def run_one(
    scn: Scenario, relay_kind: Relay, args: argparse.Namespace, pin: Pinning, deadline: float
) -> Result:
    kind = relay_kind.key
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
    with tempfile.TemporaryFile() as relay_log, contextlib.ExitStack() as running:
        env = relay_kind.env()
        ports = [port] + [free_port() for _ in range(relay_kind.nodes - 1)]
        extra_pids: list[int] = []  # Redis's CPU counts as the relay's
        if relay_kind.nodes > 1:
            # Relays sharing a backplane share their secrets (python -m relay insists).
            try:
                url, redis_pid = running.enter_context(redis_server())
            except BenchError as exc:
                result.error = str(exc)
                return result
            extra_pids.append(redis_pid)
            secret = secrets.token_urlsafe(18)
            env.update(
                DIALJAM_BACKPLANE=url,
                DIALJAM_OPERATOR_TOKEN=f"o{secret}",
                DIALJAM_BILLBOARD_TOKEN=f"b{secret}",
            )
        procs = []
        for i, p in enumerate(ports):
            # One relay on the relay's core; a second one on the other core.
            with pin.on((pin.relay_cpu, pin.load_cpu)[i % 2]):
                procs.append(
                    subprocess.Popen(
                        relay_kind.command(HOST, p),
                        cwd=relay_kind.root,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,  # the announcement (with this run's tokens)
                        stderr=relay_log,
                    )
                )
        relay = procs[0]
        worker: subprocess.Popen[bytes] | None = None
        try:
            for p, proc in zip(ports, procs, strict=True):
                wait_for_port(p, proc, RELAY_START_S)
            cfg = {
                "scenario": scn.key,
                "relay": kind,
                "port": port,
                "relay_pid": relay.pid,
                "ports": ports,
                "more_pids": [proc.pid for proc in procs[1:]] + extra_pids,
                "warmup": args.warmup,
                "duration": args.duration,
                "drain": args.drain,
                "connect_timeout": args.connect_timeout,
                "inflight": args.inflight,
                "batch": args.batch,
            }
            with pin.on(pin.load_cpu):
                worker = subprocess.Popen(
                    [sys.executable, "-m", "bench.load_generator", json.dumps(cfg)],
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
            for proc in procs:
                if proc.poll() is not None:
                    raise BenchError(f"relay exited with code {proc.returncode} during the run")
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
            for proc in procs:
                stop(proc)
    result.wall_s = time.monotonic() - began
    return result


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
        "--relay",
        action="append",
        choices=list(RELAYS),
        help="run only this relay (repeatable; default: each in the scenarios it fits)",
    )
    p.add_argument(
        "--compare",
        action="append",
        type=Path,
        default=[],
        metavar="CHECKOUT",
        help="also run the tuned relay of another checkout, side by side (repeatable)",
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
    p.add_argument(
        "--time-limit",
        type=float,
        default=360.0,
        help="stop starting runs past this many seconds in all (default 360)",
    )
    p.add_argument(
        "--backplane",
        action="store_true",
        help="also run two relays sharing channels through a redis-server (started here) "
        "in (a), (b) and (c), beside the one tuned relay",
    )
    p.add_argument("--connect-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 0.5 <= args.duration <= 120 or not 0 <= args.warmup <= 30 or not 0 < args.drain <= 30:
        p.error("--duration must be 0.5–120 s, --warmup 0–30 s, --drain up to 30 s")
    if args.inflight < args.batch or args.batch < 1:
        p.error("--batch must be at least 1 and --inflight at least --batch")
    return args


def relays(args: argparse.Namespace) -> dict[str, Relay]:
    """This checkout's relays and the baselines, then any other checkout's."""
    out = dict(RELAYS)
    if args.backplane:
        out[BACKPLANE.key] = BACKPLANE
    for path in args.compare:
        other = checkout(path)
        out[other.key] = other
    return out


def runs(args: argparse.Namespace, relays: dict[str, Relay]) -> list[tuple[Scenario, Relay]]:
    """The (scenario, relay) pairs to run: those asked for, each relay only in the
    scenarios it fits unless it was named; another checkout's beside this one's."""
    # (d), the flat-out fan-out to 200, is --backplane's: one relay against two.
    default = [k for k in sorted(SCENARIOS) if k != "d" or args.backplane]
    scenarios = list(dict.fromkeys(args.scenario or default))
    named = list(dict.fromkeys(args.relay or ())) + [
        r for r in relays if r.startswith("dialjam@") or r == BACKPLANE.key
    ]
    out = []
    for key in scenarios:
        for relay in relays.values():
            if relay.key in named or (not args.relay and key in relay.scenarios):
                out.append((SCENARIOS[key], relay))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if sys.platform != "linux":
        print("relay_load.py needs Linux (/proc, CLOCK_MONOTONIC across processes)")
        return 2
    raise_fd_limit()
    load_at_start = load()
    pin = Pinning()
    began = time.monotonic()
    deadline = began + args.time_limit
    results: list[Result] = []
    print(f"dialjam relay benchmark: {pin.describe()}", file=sys.stderr)
    kinds = relays(args)
    for scn, relay in runs(args, kinds):
        print(f"  ({scn.key}) {scn.title}: {relay.label} …", end="", file=sys.stderr)
        sys.stderr.flush()
        r = run_one(scn, relay, args, pin, deadline)
        results.append(r)
        status = "error" if r.error else f"{r.deliveries_per_s:,.0f} deliveries/s"
        print(f" {status} ({r.wall_s:.1f} s)", file=sys.stderr)
    elapsed = time.monotonic() - began
    print(report(results, pin.describe(), elapsed, kinds))
    if args.json:
        settings = {
            k: getattr(args, k) for k in ("duration", "warmup", "drain", "inflight", "batch")
        }
        settings["relays"] = {
            r.key: {
                "label": r.label,
                "env": {k: v for k, v in r.env().items() if k.startswith("DIALJAM_")},
            }
            for r in kinds.values()
        }
        write_result(
            args.json,
            "relay_load",
            load_at_start,
            settings,
            {
                "results": [asdict(r) for r in results],
                "checks": checks(results, kinds),
                "elapsed_s": elapsed,
            },
            pinning=pin.describe(),
        )
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
