"""The arrival check: a v2 subscriber on the installation's channel, as a billboard is,
feeding every event it sees to the crowd's tally. The subscription (where to resume,
gaps, coalesced arrays) is the contract's `V2Subscriber`; this module owns the socket."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

import aiohttp
import orjson

from ..backoff import backoff_delay
from ..contract.subscriber import (
    Gap,
    Message,
    Received,
    RelayError,
    Subscribed,
    Unreadable,
    V2Subscriber,
)
from .callers import CONNECT_TIMEOUT_S, CallerFailed, ws_base
from .scoring import ArrivalTally


class ArrivalChecker:
    """A v2 subscriber on the channel, as a billboard is (no token needed on a plain
    channel), feeding every event to the tally with the time `clock` read it. A
    dropped connection is resumed from the last seq it saw, so the relay's history
    fills the hole."""

    def __init__(
        self,
        crowd_relay: str,
        channel: str,
        session: aiohttp.ClientSession,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = ws_base(crowd_relay) + "/ws"
        self.channel = channel
        self.session = session
        self.clock = clock
        self.subscriber = V2Subscriber([channel], loads=orjson.loads)
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None
        self.closing = False

    async def start(self, tally: ArrivalTally) -> None:
        await self._connect(tally)
        self.task = asyncio.create_task(self._run(tally))

    async def _connect(self, tally: ArrivalTally) -> None:
        ws = await self.session.ws_connect(self.url, autoping=True, max_msg_size=0)
        for frame in self.subscriber.subscribe_frames():
            await ws.send_str(orjson.dumps(frame).decode())
        msg = await ws.receive(timeout=CONNECT_TIMEOUT_S)
        text = msg.data if msg.type is aiohttp.WSMsgType.TEXT else None
        messages = self.subscriber.receive_data(text) if text is not None else []
        if not messages or not isinstance(messages[0], Subscribed):
            await ws.close()
            raise CallerFailed(f"subscriber: the relay answered {str(text)[:80]}")
        self.take(messages[1:], tally, self.clock())
        self.ws = ws

    @staticmethod
    def take(messages: list[Message], tally: ArrivalTally, now: float) -> None:
        """Book what one frame held: events seen at `now`, gaps and refusals as errors."""
        for message in messages:
            if isinstance(message, Received):
                tally.seen(message.data, now)
            elif isinstance(message, Gap):
                tally.error("subscriber gap (events dropped)", 1)
            elif isinstance(message, RelayError):
                tally.error(f"subscriber error {message.code}")
            elif isinstance(message, Unreadable):
                tally.error(f"subscriber: {message.why}")

    async def _run(self, tally: ArrivalTally) -> None:
        while True:
            ws = self.ws
            assert ws is not None
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    now = self.clock()
                    self.take(self.subscriber.receive_data(msg.data), tally, now)
            if self.closing:
                return
            tally.error("subscriber reconnected")
            for attempt in range(5):
                await asyncio.sleep(backoff_delay(attempt, 0.2, 2.0, random.random))
                try:
                    await self._connect(tally)
                    break
                except (aiohttp.ClientError, OSError, TimeoutError, CallerFailed):
                    continue
            else:
                tally.error("subscriber lost")
                return

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.task, 2.0)
