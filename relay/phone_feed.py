"""The phone music's door and clock in the relay: the billboard's bundles in over
``/phone-audio`` (a WebSocket only the billboard token opens), played out every 20 ms
on the relay's own clock to every call that listens (``relay/phone_audio.py`` has the
bundle and the jitter buffer).

A voice gateway calls `listen(caller, play)` when a call can take audio and the
returned function when it ends; `play(frame)` is then called on the event loop once per
20 ms tick with the caller's 160 bytes of μ-law, or None when there is nothing to play
(no billboard, or the buffer ran dry): the gateway sends its own silence, or nothing.
`play` must only queue or send without waiting.

The ticks are paced by deadlines on the loop's clock (a late tick does not push the
next ones later); a loop stalled for more than `STALL_S` starts again from now rather
than bursting the frames it missed. One pacer serves every call; it runs while anyone
listens, and is restarted if it ever fails (our bug), so the music never silently stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import WSMsgType, web

from .edge import bearer_token
from .phone_audio import FRAME_S, MAX_BUNDLE, BundleError, JitterBuffer, parse_bundle
from .ratelimit import LogOnce

log = logging.getLogger("relay.phone")

PATH: Final = "/phone-audio"
STALL_S: Final = 0.1
Play = Callable[[bytes | None], None]


class _Listener:
    __slots__ = ("caller", "play")

    def __init__(self, caller: str, play: Play) -> None:
        self.caller = caller
        self.play = play


class PhoneFeed:
    """The billboard's phone mixes, paced out to the calls that listen."""

    def __init__(
        self,
        may_feed: Callable[[str | None], bool],
        target_frames: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._may_feed = may_feed  # is this token the billboard's?
        self.buffer = JitterBuffer(target_frames)
        self._clock = clock
        self._listeners: list[_Listener] = []
        self._feed: web.WebSocketResponse | None = None
        self._pacer: asyncio.Task[None] | None = None
        self._log = LogOnce(every_s=60.0)
        self.bad = 0  # bundles that could not be read
        self.feeds = 0  # feeds accepted since start
        self.stalls = 0  # ticks skipped because the loop was late
        self.sink_errors = 0
        # With several relays: sends a bundle to every relay (relay/phone_share.py);
        # False when it cannot, and this relay plays it alone.
        self.offer: Callable[[bytes], bool] | None = None
        self.extra_health: Callable[[], dict[str, Any]] | None = None

    # -- the gateways' side ----------------------------------------------------------

    def listen(self, caller: str, play: Play) -> Callable[[], None]:
        """Play the music to `caller` through `play` from the next tick; the function
        returned stops it (calling it twice is harmless)."""
        listener = _Listener(caller, play)
        self._listeners.append(listener)
        self._ensure_pacer()

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return stop

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    @property
    def connected(self) -> bool:
        return self._feed is not None and not self._feed.closed

    def tick(self, now: float) -> None:
        """One 20 ms tick at `now`: the next frame (or None) to every listener."""
        bundle = self.buffer.pop(now)
        for listener in tuple(self._listeners):
            frame = None if bundle is None else bundle.for_caller(listener.caller)
            try:
                listener.play(frame)
            except Exception:  # a gateway's bug must not silence the other calls
                self.sink_errors += 1
                if self._log.allow("sink", now):
                    log.exception("a call's phone audio failed (%d so far)", self.sink_errors)

    # -- the pacer --------------------------------------------------------------------

    def _ensure_pacer(self) -> None:
        if self._pacer is None or self._pacer.done():
            self._pacer = asyncio.get_running_loop().create_task(self._pace())
            self._pacer.add_done_callback(self._pacer_ended)

    def _pacer_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("phone audio pacer failed; restarting", exc_info=exc)
            if self._listeners:
                with contextlib.suppress(RuntimeError):  # no loop: the relay is stopping
                    self._ensure_pacer()

    async def _pace(self) -> None:
        due = self._clock()
        while self._listeners:
            now = self._clock()
            if now - due > STALL_S:
                self.stalls += 1
                due = now
            self.tick(now)
            due += FRAME_S
            await asyncio.sleep(max(0.0, due - self._clock()))

    async def close(self) -> None:
        self._listeners.clear()
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
        if self._feed is not None:
            await self._feed.close()

    # -- the billboard's side ---------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """``GET /phone-audio``: the billboard's bundles, binary frames, one per 20 ms."""
        token = bearer_token(request.headers.get("Authorization", ""))
        if token is None:
            raise web.HTTPUnauthorized(text="phone audio needs the billboard token (Bearer)")
        if not self._may_feed(token):
            raise web.HTTPForbidden(text="phone audio is fed by the billboard token only")
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_BUNDLE + 1, compress=False)
        await ws.prepare(request)
        previous, self._feed = self._feed, ws
        if previous is not None and not previous.closed:
            log.info("a new phone audio feed replaces the one before")
            await previous.close(code=4000, message=b"replaced by a newer feed")
        self.buffer.reset()
        self.feeds += 1
        log.info("phone audio feed connected")
        try:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    self._receive(msg.data)
                elif msg.type is WSMsgType.TEXT:
                    self._bad("a text frame (bundles are binary)")
        finally:
            if self._feed is ws:
                self._feed = None
                log.info("phone audio feed gone")
        return ws

    def _receive(self, data: bytes) -> None:
        if self.offer is not None and self.offer(data):
            return  # shared through Redis: it comes back to every relay, this one too
        self.take(data)

    def take(self, data: bytes) -> None:
        """A bundle (from the billboard, or another relay's) into the jitter buffer."""
        now = self._clock()
        try:
            bundle = parse_bundle(data)
        except BundleError as exc:
            self._bad(str(exc))
            return
        self.buffer.push(bundle, now)

    def _bad(self, why: str) -> None:
        self.bad += 1
        self._log.log(
            log,
            logging.WARNING,
            "bad",
            "phone audio: %s; dropped (%d so far)",
            why,
            self.bad,
            now=self._clock(),
        )

    def health(self) -> dict[str, Any]:
        stats = self.buffer.stats
        p50, p99 = stats.age_percentiles()
        return {
            "feed": "connected" if self.connected else "none",
            "listeners": len(self._listeners),
            "budget_ms": self.buffer.budget_ms,
            "received": stats.received,
            "played": stats.played,
            "underruns": stats.underruns,
            "dropped": stats.dropped,
            "late": stats.late,
            "bad": self.bad,
            "stalls": self.stalls,
            "wait_ms_p50": round(p50, 1),
            "wait_ms_p99": round(p99, 1),
            **(self.extra_health() if self.extra_health else {}),
        }


def mount(app: web.Application, feed: PhoneFeed) -> None:
    app.router.add_get(PATH, feed.handle)
