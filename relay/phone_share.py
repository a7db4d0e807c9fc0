"""With several relays (``--backplane``), the billboard's phone music reaches the calls
on every relay: the relay the billboard's `/phone-audio` link lands on publishes each
bundle once to a Redis pub/sub channel, and every relay (itself included) takes them
from there into its own jitter buffer and paces them out to its own calls.

Audio is not history: nothing is stored in Redis, and a bundle that cannot be
published is not retried — the relay that has it plays it to its own calls at once,
and the others miss that frame (their buffers carry them over a short gap). About
80 KB/s through Redis at eight track-holders, once per relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any, Final

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .backoff import backoff_delay
from .backplane import check_url, shown
from .phone_feed import PhoneFeed

log = logging.getLogger("relay.phone")

TIMEOUT_S: Final = 2.0
IN_FLIGHT: Final = 8  # publishes awaiting Redis; beyond it a frame is played here only


def topic(channel: str) -> str:
    return f"dialjam:phone:{channel}"


class PhoneShare:
    """Bundles from this relay's billboard link out to Redis, and everyone's back in."""

    def __init__(self, url: str, channel: str, feed: PhoneFeed) -> None:
        self.url = check_url(url)
        self.topic = topic(channel)
        self.feed = feed
        options: dict[str, Any] = {
            "socket_timeout": TIMEOUT_S,
            "socket_connect_timeout": TIMEOUT_S,
            "retry": Retry(NoBackoff(), 0),
        }
        self.redis: Any = aioredis.from_url(url, **options)  # type: ignore[no-untyped-call]
        self.listening = False
        self.in_flight = 0
        self.published = 0
        self.taken = 0
        self.played_here = 0  # bundles played on this relay only (Redis away or slow)
        self._task: asyncio.Task[None] | None = None
        self._subscribed = False
        self._publishing: set[asyncio.Task[None]] = set()

    def offer(self, data: bytes) -> bool:
        """Send `data` (a bundle from the billboard) to every relay; False when it
        cannot go now (the caller plays it on this relay only)."""
        if not self.listening or self.in_flight >= IN_FLIGHT:
            self.played_here += 1
            return False
        self.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._publish(data))
        self._publishing.add(task)  # held: the loop keeps only a weak reference
        task.add_done_callback(self._publishing.discard)
        return True

    async def _publish(self, data: bytes) -> None:
        try:
            await self.redis.publish(self.topic, data)
            self.published += 1
        except Exception as exc:  # Redis away: the listener notices and reconnects
            log.debug("phone audio not shared: %s", exc.__class__.__name__)
            self.feed.take(data)  # this relay's calls still hear it
            self.played_here += 1
        finally:
            self.in_flight -= 1

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(self.topic)
            while await pubsub.get_message(timeout=TIMEOUT_S) is None:
                pass  # the confirmation: from here on nothing published is missed
            self.listening = self._subscribed = True
            log.info("phone audio shared through %s", shown(self.url))
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if msg is not None and msg["type"] == "message":
                    self.taken += 1
                    self.feed.take(msg["data"])
        finally:
            self.listening = False
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _run(self) -> None:
        """Listen for the relay's life; after a loss, again after a backoff that starts
        over once a run got as far as subscribing."""
        attempt = 0
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis gone, or our bug: either way, again
                if attempt == 0:
                    log.warning("phone audio sharing lost (%s); retrying", exc.__class__.__name__)
            attempt = 0 if self._subscribed else attempt + 1
            self._subscribed = False
            await asyncio.sleep(backoff_delay(attempt, 0.2, 5.0, random.random))

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.redis.aclose()

    def health(self) -> dict[str, Any]:
        return {
            "shared": self.listening,
            "published": self.published,
            "taken": self.taken,
            "played_here_only": self.played_here,
        }
