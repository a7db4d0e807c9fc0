#!/usr/bin/env python3
"""Soak: the whole installation, every ingress path at once, for half an hour.

    python bench/soak.py                   # the soak: 30 minutes (1800 s)
    python bench/soak.py --duration 300    # make bench
    python bench/soak.py --duration 60     # CI (tests/bench/test_soak.py)

It starts a real headless billboard (``python -m billboard --headless --no-sound``, its
relay embedded, on a free port of 127.0.0.1) with a config of its own: known operator,
billboard and publisher tokens, ``public_url`` on that port, a ``[twilio]`` table with
an auth token (webhooks and streams are signed) and an ``[ari]`` table pointing at the
fake Asterisk (relay/rehearsal/fake_ari.py, the real ARI wire format) that the ARI
crowd runs; it records the show (``--record``) and logs its input events
(``--log-events``). Then a crowd plays through every path at once, at human rates:

- the rehearsal crowd of relay/rehearsal/crowd.py, one per path: keypads (a caller session from
  POST /session, then ``publisher`` frames on /ws), Twilio (the signed voice webhook,
  then a Media Stream with ``dtmf`` messages), Twilio audio (each key a tone in the
  stream's audio, for the relay's in-band detector) and ARI (StasisStart,
  ChannelDtmfReceived, hang-up);
- seed publishers with the publisher token (``/ws?token=…``, as a 2010 script changes
  only its URL): ``{"caller_id": NUMBER, "command": KEY}`` frames with ``"ack": true``,
  each press sent once the last one's ack came (no ack within ACK_TIMEOUT_S ends the
  call); half of them end with a ``leave``, the others just go quiet (the billboard
  frees their track when they idle).

Each path keeps a few callers in a call at once (SLOTS: 14 in all, more than the eight
tracks, so some wait in line); a caller stays 20–120 s (a short run: 1/6 to 1/2 of
it), plays phrases of 3–10 presses 0.22–0.5 s apart with 1–6 s pauses, hangs up, and
another takes the slot a few seconds later.

What it measures, and the checks (exit 0 when all hold, 1 otherwise, naming them):

- presses sent / acknowledged / arrived per path. Arrivals are counted by v2
  subscribers on the installation channel: each crowd's own (relay.rehearsal.crowd's check,
  per caller, in order) and one for the seed publishers, which finds each
  acknowledged press by the ``seq`` of its ack. Every press must arrive once and in
  order, every caller get through, and no acknowledged press be lost;
- errors: the crowds' (refused calls, relay error frames, subscriber gaps, unanswered
  acks) and the relay's /healthz ``errors`` and subscriber drops at the end beyond
  EXPECTED_RELAY_ERRORS: the relay's ARI client cannot reach the fake Asterisk before
  its crowd starts it and after it stops with the crowd (``ari_unreachable``,
  ``ari_dropped``); while it serves, the link must hold (one ARI connection in all);
- the billboard's resident memory (VmRSS), sampled every SAMPLE_EVERY_S: at the start,
  after the warm-up (a third of the run, 20–300 s: the relay's bounded histories fill
  in the first minutes), at the end, and the highest. Memory is flat when the growth
  from after the warm-up to the end is under 20 MiB (printed also as the
  ratio end / after warm-up), with the least-squares trend in MiB an hour beside it.
  Some growth is the show being kept: the recording holds every note (some 20 notes a
  second with this crowd), so the notes recorded after the warm-up are printed beside
  it, with the growth per note;
- stuck notes: the recording, read back with mido, has a note_off for every note_on
  (per track, channel and key);
- the billboard's stderr holds no ``Traceback`` and no ``ERROR`` line, and it exits 0;
- privacy: the event log, the events the seed subscriber saw and the billboard's stderr
  hold no run of five digits or more from the phone numbers the crowd called from
  (stderr's Twilio call ids and Asterisk channel ids, NOT_NUMBERS, set aside first:
  32 random hex digits hold such runs by chance).

Linux only (/proc). It needs nothing beyond the project's packages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

import aiohttp

from bench.procs import tail
from bench.soak_billboard import (
    Setup,
    billboard_env,
    fetch_health,
    new_setup,
    read_event_log,
    read_recording,
    sample_memory,
    stderr_problems,
    stop_billboard,
    wait_ready,
)
from bench.soak_crowd import CrowdOptions, fake_numbers, run_crowd
from bench.soak_plan import (
    CHANNEL,
    DRAIN_S,
    PATHS,
    SLOTS,
    START_TIMEOUT_S,
    digit_windows,
    soak_plans,
)
from bench.soak_report import Soak, checks, from_report, from_seed, render, summary
from bench.soak_seed import Arrivals, SeedBooks, seed_call
from bench.stats import ROOT, load, write_result
from bench.wsclient import HOST


async def play(
    setup: Setup, soak: Soak, proc: subprocess.Popen[bytes], stop: asyncio.Event
) -> None:
    rng = random.Random(soak.seed)
    plans = {path: soak_plans(soak.duration, SLOTS[path], rng) for path in PATHS}
    # Distinct made-up numbers for every caller of every path (555: no real area code).
    total = sum(len(p) for p in plans.values())
    pool = fake_numbers(total, random.Random(soak.seed ^ 0x50A))
    numbers: dict[str, list[str]] = {}
    for path in PATHS:
        numbers[path], pool = pool[: len(plans[path])], pool[len(plans[path]) :]
    soak.numbers = total
    soak.windows = windows = digit_windows(n for ns in numbers.values() for n in ns)

    t0 = time.monotonic()
    soak.crowd_began_s = t0 - soak.billboard_started
    done = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(proc.pid, soak.memory, t0, done))
    arrivals = Arrivals(f"ws://{HOST}:{setup.port}/ws", windows)
    books = SeedBooks()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await arrivals.connect(session)
        listening = asyncio.create_task(arrivals.run(session))

        def say(path: str) -> Callable[[str], None]:
            def line(text: str) -> None:
                if not text.startswith("  "):  # the crowd's 5-second progress lines
                    print(f"  [{path}] {text}", file=sys.stderr, flush=True)

            return line

        crowds = {
            path: asyncio.create_task(
                run_crowd(
                    CrowdOptions(
                        callers=len(plans[path]),
                        rate=2.0,  # validated only: the plans set the pace
                        duration=min(soak.duration, 3600.0),
                        ramp=0.0,
                        via=path,
                        relay=setup.relay,
                        channel=CHANNEL,
                        public_url=setup.relay,
                        twilio_token=setup.twilio_token,
                        ari_listen=(HOST, setup.ari_port),
                        ari_username=setup.ari_user,
                        ari_password=setup.ari_password,
                        ari_wait=30.0,
                        seed=soak.seed,
                        drain=DRAIN_S,
                    ),
                    say=say(path),
                    stop=stop,
                    plans=plans[path],
                    numbers=numbers[path],
                )
            )
            for path in PATHS
            if path != "seed"
        }
        url = f"ws://{HOST}:{setup.port}/ws?token={setup.publisher_token}"
        seeds = [
            asyncio.create_task(seed_call(session, url, plan, number, t0, books, stop))
            for plan, number in zip(plans["seed"], numbers["seed"], strict=True)
        ]
        progress = asyncio.create_task(show_progress(soak, arrivals, t0))
        try:
            reports = dict(zip(crowds, await asyncio.gather(*crowds.values()), strict=True))
            await asyncio.gather(*seeds)
            # The last acked presses are on their way to the subscriber.
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline and any(
                p.seq is not None and p.seq not in arrivals.seed_digits for p in books.presses
            ):
                await asyncio.sleep(0.05)
        finally:
            progress.cancel()
            for task in seeds:
                task.cancel()
            await arrivals.close()
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listening
        soak.memory.sample(proc.pid, time.monotonic() - t0)  # the end
        done.set()
        await sampler
        soak.health = await fetch_health(setup.relay)
    soak.paths = [from_report(path, reports[path]) for path in PATHS if path != "seed"]
    seed_row, soak.lost_acked = from_seed(books, arrivals, len(plans["seed"]))
    seed_row.errors.update(arrivals.errors)
    soak.paths.append(seed_row)
    soak.wire_leaks = arrivals.leaks


async def show_progress(soak: Soak, arrivals: Arrivals, t0: float) -> None:
    while True:
        await asyncio.sleep(60.0 if soak.duration > 300 else 15.0)
        rss = soak.memory.samples[-1][1] if soak.memory.samples else float("nan")
        seen = ", ".join(f"{k} {v}" for k, v in sorted(arrivals.digits_by_source.items()))
        print(
            f"  {time.monotonic() - t0:5.0f} s: digits seen {seen or 'none'}; "
            f"billboard RSS {rss:.1f} MiB",
            file=sys.stderr,
            flush=True,
        )


def run(args: argparse.Namespace) -> Soak:
    began = time.monotonic()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    warmup = min(300.0, max(20.0, args.duration / 3))
    soak = Soak(duration=args.duration, warmup=warmup, seed=seed)
    setup = new_setup()
    keep = Path(args.keep) if args.keep else None
    with tempfile.TemporaryDirectory(prefix="dialjam-soak-") as tmp:
        where = keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        config, recording = where / "soak.toml", where / "soak.mid"
        events, out_log, err_log = (
            where / "events.jsonl",
            where / "stdout.log",
            where / "stderr.log",
        )
        config.write_text(setup.toml())
        for stale in (recording, events):
            stale.unlink(missing_ok=True)
        command = [
            sys.executable, "-m", "billboard", "--headless", "--no-sound",
            "--host", HOST, "--port", str(setup.port), "--config", str(config),
            "--record", str(recording), "--log-events", str(events),
        ]  # fmt: skip
        print(
            f"dialjam soak: {args.duration:g} s, seed {seed}, files in {where}",
            file=sys.stderr,
            flush=True,
        )
        with out_log.open("wb") as out, err_log.open("w+b") as err:
            soak.billboard_started = time.monotonic()
            proc = subprocess.Popen(
                command, cwd=ROOT, env=billboard_env(), stdout=out, stderr=err,
                start_new_session=True,  # a Ctrl-C is ours to handle: we stop it
            )  # fmt: skip
            try:
                asyncio.run(main_async(setup, soak, proc))
            except Exception as exc:  # the run could not happen: say why, exit 1
                soak.failure = f"{type(exc).__name__}: {exc}"
            finally:
                soak.exit_status = stop_billboard(proc)
            text = err_log.read_text(errors="replace")
            if soak.failure:
                soak.failure += "\n  billboard stderr: " + tail(err, 1500)
        soak.stderr_bad, soak.stderr_warnings, soak.stderr_leaks = stderr_problems(
            text, soak.windows
        )
        soak.notes = read_recording(recording, soak.crowd_began_s + soak.warmup)
        soak.eventlog = read_event_log(events, soak.windows)
    soak.elapsed_s = time.monotonic() - began
    return soak


async def main_async(setup: Setup, soak: Soak, proc: subprocess.Popen[bytes]) -> None:
    await wait_ready(setup.relay, proc, START_TIMEOUT_S)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        print("stopping: every caller hangs up", file=sys.stderr)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    await play(setup, soak, proc, stop)
    if stop.is_set():
        soak.failure = "interrupted"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--duration", type=float, default=1800.0, help="seconds the crowd plays (default 1800)"
    )
    p.add_argument("--seed", type=int, help="the crowd's random seed (default: random, printed)")
    p.add_argument("--keep", help="keep the config, recording, event log and logs in this folder")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    if not 30 <= args.duration <= 3600 or not math.isfinite(args.duration):
        p.error("--duration must be 30–3600 s")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if sys.platform != "linux":
        print("soak.py needs Linux (/proc)", file=sys.stderr)
        return 2
    load_at_start = load()
    soak = run(args)
    text, ok = render(soak)
    print(text)
    if args.json:
        doc = dataclasses.asdict(soak) | {"checks": checks(soak), "ok": ok, "windows": None}
        doc["summary"] = summary(soak)
        settings = {"duration": args.duration, "seed": soak.seed, "warmup": soak.warmup}
        write_result(args.json, "soak", load_at_start, settings, doc)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
