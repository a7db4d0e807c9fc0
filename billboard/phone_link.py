"""The billboard's phone mixes on their way to the relay: one WebSocket to the relay's
``/phone-audio`` (``relay/phone_feed.py``), opened with the billboard token, carrying
one binary bundle (``relay/phone_audio.py``) per 20 ms frame.

Audio is only worth its newest frames: `offer` keeps at most `QUEUE_FRAMES` (100 ms:
the few a stalled phone thread renders at once to catch up) and the writer sends them
as soon as the socket takes them, so a slow network or a relay away never makes a
queue of old music (a frame pushed out by newer ones before it left, or offered while
offline, is counted in `dropped`). The relay's jitter buffer absorbs the network's
unevenness.

The connection is kept up as the relay link keeps its own (``billboard/relay_link.py``):
reconnects with backoff and jitter; a 404 means the relay has phone music off
(``[relay] phone_music = false``): said once, and asked again every `OFF_RETRY_S`; a 401
or 403 means the token is not the billboard's, said once too. `Show` restarts `run` if
it ever returns or raises (our bug). `status` is what the HUD and the ``state`` event
show. Everything here runs on the billboard's asyncio thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from relay.backoff import backoff_delay
from relay.phone_feed import PATH
from relay.ratelimit import LogOnce

log = logging.getLogger("billboard.phone_link")

BACKOFF_FIRST_S: Final = 0.5
BACKOFF_MAX_S: Final = 15.0
OFF_RETRY_S: Final = 60.0  # a relay that said it has phone music off is asked again this often
QUEUE_FRAMES: Final = 5  # the newest 100 ms waiting for the socket; older ones are dropped


def phone_audio_url(relay_url: str) -> str:
    """The relay's ``/phone-audio`` beside its ``/ws``: ``wss://host/ws`` →
    ``wss://host/phone-audio`` (a path prefix kept: ``wss://host/jam/ws`` →
    ``wss://host/jam/phone-audio``); the query is left out (the token goes in a header)."""
    parts = urlsplit(relay_url)
    path = parts.path
    base = path[: -len("/ws")] if path.endswith("/ws") else path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, base + PATH, "", ""))


class PhoneAudioLink:
    """The newest phone-audio bundle, sent to the relay; see the module docstring."""

    def __init__(self, url: str, token: str, *, rng: random.Random | None = None) -> None:
        self.url = url
        self.token = token
        self.status = "connecting"
        self.sent = 0
        self.dropped = 0  # bundles never sent: offline, or replaced by a newer one
        self.reconnects = 0
        self._rng = rng or random.Random()
        self._log = LogOnce(every_s=3600.0)
        self._queue: deque[bytes] = deque()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._wake = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    def offer(self, bundle: bytes) -> None:
        """The newest frame's bundle (asyncio thread): sent after those still waiting,
        the oldest of them dropped beyond `QUEUE_FRAMES`; dropped itself when the relay
        is not there."""
        if not self.connected:
            self.dropped += 1
            return
        if len(self._queue) >= QUEUE_FRAMES:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(bundle)
        self._wake.set()

    def health(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "sent": self.sent,
            "dropped": self.dropped,
            "reconnects": self.reconnects,
        }

    async def run(self) -> None:
        """Connect, send the newest bundle whenever there is one; after any failure wait
        (backoff with jitter; a relay with phone music off: `OFF_RETRY_S`) and connect again."""
        attempt = 0
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with aiohttp.ClientSession() as session:
            while True:
                wait: float | None = None
                try:
                    async with session.ws_connect(
                        self.url, heartbeat=10.0, headers=headers, compress=0
                    ) as ws:
                        self._ws = ws
                        self._queue.clear()
                        self.status = "connected"
                        if attempt:
                            self.reconnects += 1
                            log.info("phone audio link back after %d attempt(s)", attempt)
                        attempt = 0
                        await self._serve(ws)
                    log.warning("the relay closed the phone audio link (%s)", ws.close_code)
                except aiohttp.WSServerHandshakeError as exc:
                    wait = self._refused(exc.status)
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    if attempt == 0:
                        log.warning("phone audio link down: %s", exc.__class__.__name__)
                    self.status = "offline"
                except asyncio.CancelledError:
                    raise
                except Exception:  # our bug: show it, then reconnect as for a lost link
                    log.exception("phone audio link failed; reconnecting")
                    self.status = "offline"
                finally:
                    self._ws = None
                    self.dropped += len(self._queue)
                    self._queue.clear()
                if self.status == "connected":
                    self.status = "offline"
                attempt += 1
                if wait is None:
                    rand = self._rng.random
                    wait = backoff_delay(attempt - 1, BACKOFF_FIRST_S, BACKOFF_MAX_S, rand)
                await asyncio.sleep(wait)

    def _refused(self, status: int) -> float | None:
        """The relay answered the upgrade with `status`: why, said once; how long to
        wait before asking again (None: the usual backoff)."""
        now = time.monotonic()
        if status == 404:
            self.status = "off at the relay"
            if self._log.allow("off", now):
                log.warning(
                    "the relay has no %s: its phone music is off ([relay] phone_music = "
                    "false), so callers hear only their greeting; asking again every %.0f s",
                    PATH,
                    OFF_RETRY_S,
                )
            return OFF_RETRY_S
        if status in (401, 403):
            self.status = "refused"
            if self._log.allow("refused", now):
                log.warning(
                    "the relay refused the phone audio link (%d): the billboard token is "
                    "not the relay's billboard_token",
                    status,
                )
            return None
        self.status = "offline"
        if self._log.allow(("status", status), now):
            log.warning("the relay answered the phone audio link with HTTP %d", status)
        return None

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Send while reading (the relay sends nothing but pings and a close)."""
        writer = asyncio.create_task(self._writer(ws))
        try:
            async for _ in ws:
                pass
        finally:
            writer.cancel()

    async def _writer(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    await ws.send_bytes(self._queue.popleft())
                    self.sent += 1
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            await ws.close()  # the reader then ends, and `run` connects again
