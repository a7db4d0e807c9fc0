"""Every gateway hangs up whom the operator kicks, and every call at the operator's
``end_calls``.

A kick is the billboard's ``leave`` with reason ``kicked`` (and ``ban_s``) on
``NAME:callers``, addressed to one caller (relay/contract/callers.py). A gateway in the
relay's process hears it in-process, as a subscriber of that channel that hears every
caller (`Subscription.all_callers`), and ends that caller's calls: a kicked caller's
keys stop, and after the ban a key cannot put them back on a track.

The operator's ``end_calls`` command (relay/contract/events.py `COMMANDS`) travels on
``NAME:control``; the same watcher hears that channel in-process too and asks the
gateway to end every phone call it holds. The gateway publishes each caller's
``leave`` (reason ``hangup``: their call ended) so their tracks free; new calls are
still answered, and keypads are not touched.

The interface for a gateway is one call in its ``mount``::

    watch_kicks(app, channel, self.hang_up, self.end_calls, log)

where ``hang_up(caller, reason)`` is a coroutine ending every call of `caller` (a
pseudonym; `reason` is "kicked") and ``end_calls()`` a coroutine ending every call,
returning how many it ended. The watcher runs while the app runs; each hang-up is its
own task, a failure is logged with its traceback and never stops the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import orjson
from aiohttp import web

from ..contract.callers import read_callers
from ..contract.channels import callers_channel, control_channel
from ..contract.events import Command, Left, read_command
from ..fanout import FanOut, Outbox
from ..state import STATE

HangUp = Callable[[str, str], Awaitable[object]]
EndCalls = Callable[[], Awaitable[int]]
KICKED = "kicked"
END_CALLS = "end_calls"
# How long the relay's shutdown waits for hang-ups still under way.
STOP_WAIT_S = 3.0


def kicked_caller(data: object) -> str | None:
    """The caller an event on ``NAME:callers`` kicks, or None (total)."""
    event = read_callers(data)
    return event.caller if isinstance(event, Left) and event.reason == KICKED else None


def ends_calls(data: object) -> bool:
    """Whether an event on ``NAME:control`` is the operator's ``end_calls`` (total)."""
    command = read_command(data)
    return isinstance(command, Command) and command.name == END_CALLS


class KickWatcher:
    """Subscribes to `channel`'s ``:callers`` and ``:control`` on `hub`; calls `hang_up`
    for each kick and `end_calls` for each ``end_calls`` command. It is the outbox's
    owner: the relay's round of writes calls `flush`, which takes the queued events
    (each a v1 subscriber's bare ``data``) instead of writing them."""

    def __init__(
        self,
        hub: FanOut,
        channel: str,
        hang_up: HangUp,
        end_calls: EndCalls,
        log: logging.Logger,
    ) -> None:
        self.hub = hub
        self.name = callers_channel(channel)
        self.control = control_channel(channel)
        self.hang_up = hang_up
        self.end_calls = end_calls
        self.log = log
        self.kicks = 0
        self.ends = 0
        self._outbox: Outbox | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        outbox = self.hub.open(f"kicks of {self.name}", owner=self)
        self.hub.subscribe(outbox, self.name, v2=False, now=0.0, all_callers=True)
        self.hub.subscribe(outbox, self.control, v2=False, now=0.0)
        self._outbox = outbox

    def flush(self, now: float) -> None:
        outbox = self._outbox
        if outbox is None:
            return
        items = list(outbox.items)
        outbox.items.clear()
        outbox.controls.clear()
        for sub, _seq, payload, _t in items:
            name = sub.channel.name
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:  # the hub wrote it: never the peer's fault
                self.log.error("unreadable event on %s", name)
                continue
            if name == self.control:
                if ends_calls(data):
                    self.ends += 1
                    self.log.info("the operator ends every call")
                    self._spawn(self._end_calls())
                continue
            caller = kicked_caller(data)
            if caller is not None:
                self.kicks += 1
                self.log.info("caller %s was kicked: hanging up", caller)
                self._spawn(self._hang_up(caller))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hang_up(self, caller: str) -> None:
        try:
            await self.hang_up(caller, KICKED)
        except Exception:  # our bug: show it; the next kick still works
            self.log.exception("hanging up kicked caller %s failed", caller)

    async def _end_calls(self) -> None:
        try:
            ended = await self.end_calls()
        except Exception:  # our bug: show it; the next command still works
            self.log.exception("ending every call failed")
            return
        self.log.info("the operator's end_calls: %d call(s) ended", ended)

    async def stop(self) -> None:
        """Unsubscribe, and give the hang-ups under way a moment to finish."""
        if self._outbox is not None:
            self.hub.close(self._outbox)
            self._outbox = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=STOP_WAIT_S)
            for task in pending:
                task.cancel()


def watch_kicks(
    app: web.Application,
    channel: str,
    hang_up: HangUp,
    end_calls: EndCalls,
    log: logging.Logger,
) -> None:
    """While `app` runs, hang up (`hang_up(caller, "kicked")`) whom the billboard kicks on
    `channel`'s ``:callers``, and end every call (`end_calls()`) when the operator says
    ``end_calls`` on its ``:control``."""

    async def running(app: web.Application) -> AsyncIterator[None]:
        watcher = KickWatcher(app[STATE].hub, channel, hang_up, end_calls, log)
        watcher.start()
        try:
            yield
        finally:
            await watcher.stop()

    app.cleanup_ctx.append(running)


__all__ = ["EndCalls", "HangUp", "KickWatcher", "ends_calls", "kicked_caller", "watch_kicks"]
