"""The legitimate side of an attack, in a process of its own: a keypad caller and a
Twilio caller keep playing, the operator changes the tempo, and a watcher keeps every
frame the public channel and the state channel carry.

    python -m tests.attacks.players --url http://127.0.0.1:PORT --twilio-token T \
        --operator-token O --seconds 15 --rate 4 --frames FILE

The callers are the rehearsal crowd's own (``relay.rehearsal.callers.Callers``:
``keypad``, POST /session, then the socket with ``session`` on each publisher frame,
as web/js/keypad.js does; ``twilio_call``, the signed voice webhook, then the signed
Media Stream with ``start``, ``dtmf`` and ``stop``), so the wire is the one the
rehearsal crowd speaks. Each press is stamped with ``time.monotonic()`` as it leaves
(the system's CLOCK_MONOTONIC, the clock the billboard stamps it with when its engine
applies it).

At the end one JSON object is printed on stdout: every caller's presses, the
operator's commands and when their effect was seen in a ``state``, the numbers the
Twilio caller called from, and any error a caller met.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson

from relay.rehearsal import callers, plan, scoring

CHANNEL = "dialjam"
# Tempos the operator sets in turn, far from the default 112 and from each other.
TEMPOS = (97.0, 131.0)
STATE_WAIT_S = 3.0
CPU_FIELDS = ("ru_utime", "ru_stime")


async def watch(url: str, channels: Sequence[str], out: IO[bytes], ready: asyncio.Event) -> None:
    """A v2 subscriber without a token, as a wall mirror or a curious stranger is:
    every frame it receives goes to `out`, one a line, unparsed."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, max_msg_size=0, autoping=True)
        for channel in channels:
            frame = {"type": "subscriber", "id": channel, "v": 2}
            await ws.send_str(orjson.dumps(frame).decode())
        ready.set()
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                out.write(msg.data.encode() + b"\n")


async def operate(
    url: str, token: str, at: Sequence[float], began: float, report: list[dict[str, Any]]
) -> None:
    """The console: ``tempo`` on CHANNEL:control with the operator token at each time of
    `at` (seconds after `began`), then the next ``state`` on CHANNEL:state must show it."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            url, headers={"Authorization": f"Bearer {token}"}, max_msg_size=0
        )
        subscribe = {"type": "subscriber", "id": f"{CHANNEL}:state", "v": 2}
        await ws.send_str(orjson.dumps(subscribe).decode())
        for when, bpm in zip(at, TEMPOS, strict=False):
            await asyncio.sleep(max(0.0, began + when - time.monotonic()))
            command = {"event": "command", "name": "tempo", "args": {"bpm": bpm}}
            frame = {"type": "publisher", "id": f"{CHANNEL}:control", "data": command}
            sent = time.monotonic()
            await ws.send_str(orjson.dumps(frame).decode())
            entry: dict[str, Any] = {
                "bpm": bpm,
                "sent": sent,
                "seen": None,  # when a state first showed it
                "states": 0,  # states received until then (the billboard sends ≤ 10 a second)
                "errors": [],
            }
            report.append(entry)
            deadline = sent + STATE_WAIT_S
            while entry["seen"] is None and (left := deadline - time.monotonic()) > 0:
                try:
                    msg = await ws.receive(timeout=left)
                except TimeoutError:
                    break
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    entry["errors"].append(f"socket {msg.type.name}")
                    break
                frame_in = orjson.loads(msg.data)
                for item in frame_in if isinstance(frame_in, list) else [frame_in]:
                    if item.get("type") == "error":
                        entry["errors"].append(item.get("code"))
                    data = item.get("data") if item.get("type") == "event" else None
                    if isinstance(data, dict) and data.get("event") == "state":
                        entry["states"] += 1
                        if data.get("tempo") == bpm:
                            entry["seen"] = time.monotonic()
                            break
        await ws.close()


async def play(args: argparse.Namespace) -> dict[str, Any]:
    options = plan.CrowdOptions(
        callers=2,
        rate=args.rate,
        duration=args.seconds,
        # The Twilio caller starts half a press later: their presses take turns, so
        # one stall of the relay is one late press, not two.
        ramp=1.0 / args.rate,
        via="ws",
        relay=args.url,
        channel=CHANNEL,
        public_url=args.url,
        twilio_token=args.twilio_token,
        seed=args.seed,
        check=False,
        # Metronomic, as stage.py counts on: rate × seconds presses each, evenly spaced,
        # the two callers half a press apart (the ramp above), so the p99 of press →
        # engine is over presses that never come in a burst.
        style="steady",
    )
    plan.validate(options)
    plans = plan.plan_crowd(options, args.seed)
    tally = scoring.ArrivalTally()
    stop = asyncio.Event()
    ws_url = callers.ws_base(args.url) + "/ws"
    commands: list[dict[str, Any]] = []
    with open(args.frames, "wb") as frames:
        ready = asyncio.Event()
        watcher = asyncio.create_task(watch(ws_url, (CHANNEL, f"{CHANNEL}:state"), frames, ready))
        await asyncio.wait_for(ready.wait(), 10)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            keypad = callers.Callers(options, session, tally, stop, args.seed)
            phone = callers.Callers(
                dataclasses.replace(options, via="twilio"), session, tally, stop, args.seed
            )
            began = time.monotonic()
            third = args.seconds / 3
            await asyncio.gather(
                keypad.play(plans[0]),
                phone.play(plans[1]),
                operate(ws_url, args.operator_token, (third, 2 * third), began, commands),
            )
        await asyncio.sleep(0.5)  # the last leave's state
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await watcher
    return {
        "callers": {
            caller: {
                "via": "ws" if log.index == 0 else "twilio",
                "sent": log.sent,
                "ended": log.ended,
            }
            for caller, log in tally.by_caller.items()
        },
        "failed": {str(index): kind for index, kind in tally.failed.items()},
        "errors": dict(tally.errors),
        "commands": commands,
        "numbers": phone.numbers,
        "cpu_s": sum(getattr(resource.getrusage(resource.RUSAGE_SELF), f) for f in CPU_FIELDS),
    }


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop where it is installed, as the relay and the crowd use."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.attacks.players")
    p.add_argument("--url", required=True, help="the relay, http://127.0.0.1:PORT")
    p.add_argument("--twilio-token", required=True)
    p.add_argument("--operator-token", required=True)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--rate", type=float, default=4.0, help="presses a second per caller")
    p.add_argument("--frames", type=Path, required=True, help="where the watcher writes")
    p.add_argument("--seed", type=int, default=random.randrange(2**31))
    args = p.parse_args(argv)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        result = runner.run(play(args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
