"""The billboard's door to the relay: a v2 subscriber that resumes, reconnects with
backoff and jitter, and publishes the billboard's caller updates and state.

The subscription itself (frames in, events out, where to resume, gaps) is the
contract's sans-I/O `V2Subscriber`; this module owns only the socket.

It runs on the asyncio thread, off the frame loop. What it receives is handed to
`on_data` (the installation's channel: joins, digits, leaves) and `on_command` (the
``:control`` channel: the console's commands); both are called on the asyncio thread
and must only queue the work.

Nothing a peer sends can end the link: a frame it cannot read is counted and dropped,
a failure in handling one event is logged (rate-limited) and the next one is read, and
any failure of the connection itself is followed by a reconnect with backoff. `Show`
restarts `run` if it ever returns or raises (our bug), so the link is never silently
dead; `status` is what the HUD and the `state` event show.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from relay.backoff import backoff_delay
from relay.contract.channels import callers_channel, control_channel, state_channel
from relay.contract.subscriber import (
    Gap,
    Message,
    Received,
    RelayError,
    Unreadable,
    V2Subscriber,
    publish_frame,
)
from relay.ratelimit import LogOnce

log = logging.getLogger("billboard.relay_link")

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 15.0
PENDING_MAX = 1000  # caller updates kept while the relay is away


class RelayLink:
    def __init__(
        self,
        url: str,
        channel: str,
        token: str,
        on_data: Callable[[dict[str, Any]], None],
        on_command: Callable[[dict[str, Any]], None],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.channel = channel
        self.control = control_channel(channel)
        self.state_channel = state_channel(channel)
        self.callers_channel = callers_channel(channel)
        self.token = token
        self.on_data = on_data
        self.on_command = on_command
        self.status = "connecting"
        self.gaps = 0
        self.reconnects = 0
        self.bad_frames = 0  # frames or events that could not be handled
        self.refusals = 0  # error frames from the relay
        self._rng = rng or random.Random()
        # A steady stream of bad frames costs a line a minute per kind, never a flood.
        self._log = LogOnce(every_s=60.0)
        self._subscriber = V2Subscriber((channel, self.control), loads=orjson.loads)
        self._pending: deque[bytes] = deque(maxlen=PENDING_MAX)
        self._state: bytes | None = None  # only the latest state matters
        self._digest: bytes | None = None  # and only the latest digest
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._wake = asyncio.Event()

    # -- publishing (asyncio thread) --

    def publish_update(self, data: dict[str, Any]) -> None:
        """An assign or leave for CHANNEL:state; kept (boundedly) while offline."""
        self._pending.append(self._frame(data))
        self._wake.set()

    def publish_state(self, data: dict[str, Any]) -> None:
        """The latest `state`; an older one not yet sent is replaced."""
        self._state = self._frame(data)
        self._wake.set()

    def publish_news(self, data: dict[str, Any]) -> None:
        """An event for CHANNEL:callers (billboard/news.py): one caller's news, kept
        (boundedly) while offline, or the digest, of which only the latest is kept."""
        frame = self._frame(data, self.callers_channel)
        if data.get("event") == "digest":
            self._digest = frame
        else:
            self._pending.append(frame)
        self._wake.set()

    def _frame(self, data: dict[str, Any], channel: str | None = None) -> bytes:
        return orjson.dumps(publish_frame(channel or self.state_channel, data))

    # -- the connection --

    async def run(self) -> None:
        """Connect, subscribe, read; on any failure wait (backoff with jitter) and
        connect again, resuming each channel from the last seq seen."""
        attempt = 0
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.ws_connect(
                        self.url, heartbeat=10.0, headers=headers, compress=0, max_msg_size=0
                    ) as ws:
                        self._ws = ws
                        await self._subscribe(ws)
                        self.status = "connected"
                        if attempt:
                            self.reconnects += 1
                            log.info("relay link back after %d attempt(s)", attempt)
                        attempt = 0
                        writer = asyncio.create_task(self._writer(ws))
                        try:
                            await self._reader(ws)
                        finally:
                            writer.cancel()
                    log.warning("relay closed the link (%s)", ws.close_code)
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    if attempt == 0:
                        log.warning("relay link down: %s", exc.__class__.__name__)
                except asyncio.CancelledError:
                    raise
                except Exception:  # our bug: show it, then reconnect as for a lost link
                    log.exception("relay link failed; reconnecting")
                finally:
                    self._ws = None
                self.status = "offline"
                attempt += 1
                delay = backoff_delay(attempt - 1, BACKOFF_FIRST_S, BACKOFF_MAX_S, self._rng.random)
                await asyncio.sleep(delay)
                self.status = "connecting"

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        for frame in self._subscriber.subscribe_frames():  # resumed where it was
            await ws.send_str(orjson.dumps(frame).decode())

    async def _writer(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await ws.send_str(self._pending[0].decode())
                self._pending.popleft()  # only once it is on its way
            if self._state is not None:
                state, self._state = self._state, None
                await ws.send_str(state.decode())
            if self._digest is not None:
                digest, self._digest = self._digest, None
                await ws.send_str(digest.decode())

    async def _reader(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            for message in self._subscriber.receive_data(msg.data):
                try:
                    self._receive(message)
                except Exception:  # our bug: one event never ends the link
                    self.bad_frames += 1
                    if self._log.allow("failed", time.monotonic()):
                        log.exception(
                            "failed on a relay frame (%d so far); going on", self.bad_frames
                        )

    def _bad(self, why: str) -> None:
        self.bad_frames += 1
        self._log.log(
            log,
            logging.WARNING,
            "bad",
            "%s; ignored (%d so far)",
            why,
            self.bad_frames,
            now=time.monotonic(),
        )

    def _receive(self, message: Message) -> None:
        if isinstance(message, Received):
            if message.channel == self.channel:
                self.on_data(message.data)
            elif message.channel == self.control:
                self.on_command(message.data)
        elif isinstance(message, Unreadable):
            self._bad(message.why)
        elif isinstance(message, Gap):
            if not message.lost:
                return  # an empty range: nothing of this epoch was lost (a relay restart)
            self.gaps += 1
            log.warning(
                "relay lost events %s–%s of %s (%s)",
                message.first,
                message.last,
                message.channel,
                message.reason,
            )
        elif isinstance(message, RelayError):
            self.refusals += 1
            self._log.log(
                log,
                logging.WARNING,
                ("refused", message.code),
                "relay refused a frame: %s (%d so far)",
                message.code,
                self.refusals,
                now=time.monotonic(),
            )
