"""The soak's seed publishers (a 2010 script with the publisher token, acknowledged
presses) and the v2 subscriber that counts what arrives on the installation channel."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.soak_crowd import (
    CallerPlan,
)
from bench.soak_plan import ACK_TIMEOUT_S, CHANNEL, leaked_runs
from bench.wsclient import read_frame

# -- the seed publishers and their subscriber ------------------------------------------


@dataclass
class SeedPress:
    key: str
    sent: float
    seq: int | None = None  # from the ack
    error: str | None = None


@dataclass
class SeedBooks:
    presses: list[SeedPress] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    failed: int = 0


class Arrivals:
    """A v2 subscriber on the installation channel: the seed form's digits by seq, the
    digits of every path by source, and any number-looking text in what it saw. A
    dropped connection resumes from the last seq (the relay's history fills in)."""

    def __init__(self, url: str, windows: set[str]) -> None:
        self.url = url
        self.windows = windows
        self.seed_digits: dict[int, tuple[str, float]] = {}  # seq → (key, when seen)
        self.digits_by_source: Counter[str] = Counter()
        self.events = 0
        self.leaks: list[str] = []
        self.errors: Counter[str] = Counter()
        self.seq: int | None = None
        self.epoch: str | None = None
        self.closing = False
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self, session: aiohttp.ClientSession) -> None:
        ws = await session.ws_connect(self.url, max_msg_size=0)
        frame: dict[str, Any] = {"type": "subscriber", "id": CHANNEL, "v": 2}
        if self.seq is not None:
            frame |= {"since": self.seq, "epoch": self.epoch}
        await ws.send_str(orjson.dumps(frame).decode())
        reply = orjson.loads((await ws.receive(timeout=10)).data)
        if not isinstance(reply, dict) or reply.get("type") != "subscribed":
            raise RuntimeError(f"subscribe refused: {str(reply)[:120]}")
        if self.seq is None:
            self.seq = reply.get("seq")
        self.epoch = reply.get("epoch")
        self.ws = ws

    async def run(self, session: aiohttp.ClientSession) -> None:
        while True:
            ws = self.ws
            assert ws is not None
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self.read(orjson.loads(msg.data))
            if self.closing:
                return
            self.errors["seed subscriber reconnected"] += 1
            await asyncio.sleep(0.5)
            await self.connect(session)

    def read(self, obj: Any) -> None:
        if isinstance(obj, list):
            obj = [item for item in obj if isinstance(item, dict)]
        elif not isinstance(obj, dict):
            return
        events, controls = read_frame(obj)
        for item in controls:
            kind = item.get("type")
            if kind == "gap":
                self.errors["seed subscriber gap"] += 1
            elif kind == "error":
                self.errors[f"seed subscriber error {item.get('code')}"] += 1
        for item in events:
            if item.get("type") != "event":
                continue
            self.events += 1
            self.seq = item.get("seq", self.seq)
            data = item.get("data")
            if not isinstance(data, dict):
                continue
            self.leaks += leaked_runs(data, self.windows)
            if "caller_id" in data and "command" in data and isinstance(item.get("seq"), int):
                self.seed_digits[item["seq"]] = (str(data["command"]), time.monotonic())
                self.digits_by_source["seed"] += 1
            elif data.get("event") == "digit":
                self.digits_by_source[str(data.get("source"))] += 1

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()


async def seed_call(
    session: aiohttp.ClientSession,
    url: str,
    plan: CallerPlan,
    number: str,
    t0: float,
    books: SeedBooks,
    stop: asyncio.Event,
) -> None:
    """One call through a seed-era publisher: a socket of its own, the 2010 digit form
    with an ack asked for each press, then (every other caller) a leave."""
    if not await sleep_until(t0 + plan.start, stop):
        return
    try:
        ws = await session.ws_connect(url)
    except (aiohttp.ClientError, OSError) as exc:
        books.failed += 1
        books.errors[f"seed publisher could not connect ({type(exc).__name__})"] += 1
        return

    async def send(data: dict[str, Any]) -> dict[str, Any] | None:
        frame = {"type": "publisher", "id": CHANNEL, "data": data, "ack": True}
        await ws.send_str(orjson.dumps(frame).decode())
        # Replies come in order and one press waits for the last one's: the next
        # reply is this frame's.
        try:
            msg = await ws.receive(timeout=ACK_TIMEOUT_S)
        except TimeoutError:
            return None
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return {"type": "closed"}
        reply = orjson.loads(msg.data)
        return reply if isinstance(reply, dict) else {"type": "not an object"}

    try:
        began = time.monotonic()
        for press in plan.presses:
            if not await sleep_until(began + press.at, stop) or ws.closed:
                break
            entry = SeedPress(press.key, time.monotonic())
            books.presses.append(entry)
            reply = await send({"caller_id": number, "command": press.key})
            if reply is None:
                # A late ack would be taken for the next frame's: this call ends here.
                books.errors[f"seed press not acknowledged within {ACK_TIMEOUT_S:g} s"] += 1
                return
            if reply.get("type") == "ack" and isinstance(reply.get("seq"), int):
                entry.seq = reply["seq"]
            else:
                entry.error = f"answered {reply.get('type')} {reply.get('code', '')}".strip()
            if entry.error:
                books.errors[f"seed press {entry.error}"] += 1
        await sleep_until(began + plan.hang_up, stop)
        if plan.index % 2 == 0 and not ws.closed:
            reply = await send({"event": "leave", "caller": number, "reason": "hangup"})
            if reply is None or reply.get("type") != "ack":
                books.errors["seed leave not acknowledged"] += 1
    finally:
        await ws.close()


async def sleep_until(when: float, stop: asyncio.Event) -> bool:
    """Sleep until `when` (time.monotonic()); False when the soak is being stopped."""
    while not stop.is_set():
        delay = when - time.monotonic()
        if delay <= 0:
            return True
        await asyncio.sleep(min(delay, 0.25))
    return False
