"""Every gateway hangs up whom the operator kicks.

A kick is the billboard's ``leave`` with reason ``kicked`` (and ``ban_s``) on
``NAME:callers``, addressed to one caller (relay/contract/callers.py). A gateway in the
relay's process hears it in-process, as a subscriber of that channel that hears every
caller (`Subscription.all_callers`), and ends that caller's calls: a kicked caller's
keys stop, and after the ban a key cannot put them back on a track.

The interface for a gateway is one call in its ``mount``::

    watch_kicks(app, channel, self.hang_up, log)

where ``hang_up(caller, reason)`` is a coroutine ending every call of `caller` (a
pseudonym; `reason` is "kicked"). The watcher runs while the app runs; each hang-up is
its own task, a failure is logged with its traceback and never stops the next kick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web

from ..contract.callers import read_callers
from ..contract.channels import callers_channel
from ..contract.events import Left
from ..fanout import FanOut, Outbox
from ..state import STATE

HangUp = Callable[[str, str], Awaitable[object]]
KICKED = "kicked"
# How long the relay's shutdown waits for hang-ups still under way.
STOP_WAIT_S = 3.0


def kicked_caller(data: object) -> str | None:
    """The caller an event on ``NAME:callers`` kicks, or None (total)."""
    event = read_callers(data)
    return event.caller if isinstance(event, Left) and event.reason == KICKED else None


class KickWatcher:
    """Subscribes to `channel`'s ``:callers`` on `hub` and calls `hang_up` for each kick.
    It is the outbox's owner: the relay's round of writes calls `flush`, which takes the
    queued events (each a v1 subscriber's bare ``data``) instead of writing them."""

    def __init__(self, hub: FanOut, channel: str, hang_up: HangUp, log: logging.Logger) -> None:
        self.hub = hub
        self.name = callers_channel(channel)
        self.hang_up = hang_up
        self.log = log
        self.kicks = 0
        self._outbox: Outbox | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        outbox = self.hub.open(f"kicks of {self.name}", owner=self)
        self.hub.subscribe(outbox, self.name, v2=False, now=0.0, all_callers=True)
        self._outbox = outbox

    def flush(self, now: float) -> None:
        outbox = self._outbox
        if outbox is None:
            return
        items = list(outbox.items)
        outbox.items.clear()
        outbox.controls.clear()
        for _sub, _seq, payload, _t in items:
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:  # the hub wrote it: never the peer's fault
                self.log.error("unreadable event on %s", self.name)
                continue
            caller = kicked_caller(data)
            if caller is not None:
                self.kicks += 1
                self.log.info("caller %s was kicked: hanging up", caller)
                task = asyncio.get_running_loop().create_task(self._hang_up(caller))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _hang_up(self, caller: str) -> None:
        try:
            await self.hang_up(caller, KICKED)
        except Exception:  # our bug: show it; the next kick still works
            self.log.exception("hanging up kicked caller %s failed", caller)

    async def stop(self) -> None:
        """Unsubscribe, and give the hang-ups under way a moment to finish."""
        if self._outbox is not None:
            self.hub.close(self._outbox)
            self._outbox = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=STOP_WAIT_S)
            for task in pending:
                task.cancel()


def watch_kicks(app: web.Application, channel: str, hang_up: HangUp, log: logging.Logger) -> None:
    """While `app` runs, hang up (`hang_up(caller, "kicked")`) whom the billboard kicks on
    `channel`'s ``:callers``."""

    async def running(app: web.Application) -> AsyncIterator[None]:
        watcher = KickWatcher(app[STATE].hub, channel, hang_up, log)
        watcher.start()
        try:
            yield
        finally:
            await watcher.stop()

    app.cleanup_ctx.append(running)


__all__ = ["HangUp", "KickWatcher", "kicked_caller", "watch_kicks"]
