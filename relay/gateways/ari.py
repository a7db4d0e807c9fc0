"""Asterisk ARI gateway: callers that the dialplan sends into our Stasis application
(``exten => _[+0-9].,1,Stasis(dialjam)``) become `join` / `digit` / `leave` events on
the installation's channel; what each ARI event becomes is the pure core's
(`relay.gateways.ari_core`), the REST calls are `relay.gateways.ari_rest`'s.

The relay is the client here: it connects *out* to Asterisk's events socket
``ws://HOST:8088/ari/events?app=NAME&api_key=USER:PASS`` and calls its REST API with
HTTP basic auth (https://docs.asterisk.org/Configuration/Interfaces/Asterisk-REST-Interface-ARI/).
How real Asterisk behaves, and what the client does about it:

- The socket reconnects with capped exponential backoff and jitter. After each connect
  ``GET /ari/applications/{app}`` resyncs: callers we knew that are gone leave (an
  Asterisk restart ends every call, so all of them do); channels we did not know are
  fetched (``GET /ari/channels/{id}``) and join. Events for the app's channels are
  dropped (not queued) while the socket is down: a key pressed then is lost.
- Asterisk unreachable for ``[ari] lost_after_s``: its callers leave with reason
  ``lost`` (their calls may be up still; a resync that finds them brings them back).
- ``ApplicationReplaced``: another client took the app; Asterisk keeps our socket open
  and silent. Said once (log, ``/healthz`` status "replaced", the ``ari_replaced``
  error count); our callers leave with reason ``lost``; the client closes its socket and
  takes the app back after a wait that doubles up to 10 × ``reconnect_max_s``. ARI
  cannot tell whether the other client is still there without taking the app back:
  a stray test client loses it then, and two relays with the same app take it from
  each other slowly, each saying so — give each its own app name.
- Asterisk accepts any app name, so a ``[ari] app`` that no dialplan ``Stasis()``
  names looks connected while every call fails. ``/healthz`` says ``app_proven:
  false`` until a call has entered the app, and the connect log line says what
  extensions.conf must say; meanwhile a watch of the dialplan's ``Stasis()`` calls
  (`relay.gateways.ari_check`) names the app the calls really go to.
- A prompt Asterisk cannot play (``PlaybackFinished`` with ``state: "failed"``, though
  ``play`` answered 201) is logged once per media, with what to do.
- With the phone music on (``state.phone``), each joined caller hears it through an
  external media channel in a bridge (`relay.gateways.ari_media`), torn down when
  they leave.
- Kicked callers are hung up (``DELETE /ari/channels/{id}``, relay/gateways/kicks.py);
  a stopping relay hangs up its calls (within `HANG_UP_ON_STOP_S`).

A bad message is Asterisk's (or a proxy's) fault: counted, logged once per kind, and the
client goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import WSMsgType, web

from ..backoff import backoff_delay
from ..config import AriConfig, RelayConfig, pseudonym_key
from ..phone_feed import PhoneFeed
from ..ratelimit import LogOnce
from .ari_check import AppCheck
from .ari_core import (
    Answer,
    AriCall,
    AriCalls,
    AriError,
    MediaEntered,
    Output,
    PlaybackFailed,
    Replaced,
    ari_urls,
)
from .ari_media import AriMusic
from .ari_rest import REST_TIMEOUT_S, AriRest, reason
from .common import CountError, Event, Publisher, PublishFn
from .kicks import watch_kicks

log = logging.getLogger("relay.ari")

# The first wait after a failed connect; it doubles up to [ari] reconnect_max_s.
INITIAL_BACKOFF_S = 0.5
# After ApplicationReplaced, the waits double up to this many times reconnect_max_s.
REPLACED_BACKOFF_FACTOR = 10.0
REPLACED_LOG_EVERY_S = 600.0
# The hang-ups of a stopping relay get this long in all.
HANG_UP_ON_STOP_S = 3.0
# Asterisk's simple hangup reason (channels.json, DELETE /channels/{id}: `reason`).
HANGUP_REASON = "normal"


class AriGateway:
    """Runs the ARI client for the relay: started and stopped with the app
    (`app.cleanup_ctx`), so `python -m relay` and the billboard's embedded relay both
    have it. `status` is connecting, connected, reconnecting, replaced or stopped.
    `clock` is the event loop's (seconds) unless a test gives its own."""

    def __init__(
        self,
        config: AriConfig,
        relay: RelayConfig,
        publish: PublishFn,
        count_error: CountError,
        rand: Callable[[], float] = random.random,
        phone: PhoneFeed | None = None,
    ) -> None:
        self.config = config
        self.channel = config.channel_for(relay)
        rest_url, self.events_url = ari_urls(config.url)
        self.rest = AriRest(rest_url, config.username, config.password, count_error)
        self.publish = Publisher(publish, count_error, log)
        self._count_error = count_error
        self.core = AriCalls(pseudonym_key(relay), self.channel)
        # The phone music (issue 16): None when [relay] phone_music is off.
        self.music = (
            None
            if phone is None
            else AriMusic(
                self.rest,
                config.app,
                phone,
                self.core.media_ids,
                count_error,
                self._spawn,
                config.media_host,
            )
        )
        self.status = "connecting"
        self.connections = 0
        self.replacements = 0
        self.last_error = ""
        self._rand = rand  # the backoff's jitter
        self._conn_logged = LogOnce()  # connection failures, once until connected
        self._playback_logged = LogOnce()  # failed prompts, once per media
        # ApplicationReplaced and taking the app back: a tug of war with a second relay
        # of the same app says so every REPLACED_LOG_EVERY_S, not at every turn.
        self._replaced_logged = LogOnce(every_s=REPLACED_LOG_EVERY_S)
        api_key = f"{config.username}:{config.password}" if config.username else ""
        self.check = AppCheck(config.app, self.rest, self.events_url, api_key)
        self._check_task: asyncio.Task[None] | None = None
        self._lost_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def mount(self, app: web.Application) -> None:
        app[ARI] = self
        app.cleanup_ctx.append(self.running)
        watch_kicks(app, self.channel, self.hang_up, self.end_calls, log)

    def health(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "app": self.config.app,
            "callers": self.core.callers,
            "connections": self.connections,
            "replaced": self.replacements,
            # Asterisk takes any app name: only a call entering it proves the dialplan;
            # a call sent to a Stasis() app nobody holds names the dialplan's.
            "app_proven": self.app_proven,
            "app_mismatch": None if self.app_proven else self.check.mismatch,
            "calls_entered": self.core.entered,
            "last_error": self.last_error or None,
            "music": None if self.music is None else self.music.health(),
        }

    @property
    def app_proven(self) -> bool:
        return self.core.entered > 0 or self.check.seen_ours

    async def running(self, app: web.Application) -> AsyncIterator[None]:
        """The client runs while the app does; on the way out it hangs up its calls."""
        self.rest.open()
        task = asyncio.get_running_loop().create_task(self.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._cancel_lost_timer()
            await self.hang_up_all()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.music is not None:
                self.music.close()
            await self.rest.close()
            self.status = "stopped"

    async def run(self) -> None:
        """Connect, listen, and after every loss wait (backoff) and connect again; after
        ApplicationReplaced, wait longer, and longer again each time in a row."""
        cfg = self.config
        attempt = 0
        replaced_in_a_row = 0
        while True:
            try:
                ended = await self.listen_once()
            except Exception:  # our bug: show it, and keep the callers' door open
                log.exception("the ARI client failed; reconnecting")
                ended = "failed"
            if ended == "replaced":
                attempt = 0
                replaced_in_a_row += 1
                cap = cfg.reconnect_max_s * REPLACED_BACKOFF_FACTOR
                delay = backoff_delay(replaced_in_a_row - 1, cfg.reconnect_max_s, cap, self._rand)
                log.info("taking the Stasis app back in %.1f s", delay)
            else:
                if ended == "closed":
                    attempt = 0  # a good connection: start the backoff over
                    replaced_in_a_row = 0
                if self.status != "replaced":
                    self.status = "reconnecting"
                delay = backoff_delay(attempt, INITIAL_BACKOFF_S, cfg.reconnect_max_s, self._rand)
                attempt += 1
                log.debug("reconnecting to ARI in %.2f s (attempt %d)", delay, attempt)
            await asyncio.sleep(delay)

    async def listen_once(self) -> str:
        """One connection: connect, resync, read events until it closes or we are
        replaced. Returns how it ended: "failed" (never opened), "closed", "replaced"."""
        session = self.rest.session
        assert session is not None
        params = {"app": self.config.app}
        if self.config.username:
            params["api_key"] = f"{self.config.username}:{self.config.password}"
        try:
            ws = await session.ws_connect(
                self.events_url,
                params=params,
                heartbeat=30.0,
                timeout=aiohttp.ClientWSTimeout(ws_close=REST_TIMEOUT_S),
            )
        except aiohttp.WSServerHandshakeError as exc:
            # Never str(exc): it holds the URL, and the URL holds the api_key.
            if exc.status == 401:
                self._fail(
                    "unauthorised",
                    "ARI refused our credentials (401): check [ari] username and password "
                    "against a user in Asterisk's ari.conf; retrying",
                )
            else:
                self._fail(f"http_{exc.status}", f"ARI events socket refused: HTTP {exc.status}")
            return "failed"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._fail(
                "unreachable",
                f"cannot reach Asterisk's ARI at {self.rest.base} ({reason(exc)}); retrying "
                f"with backoff up to {self.config.reconnect_max_s:g} s",
            )
            return "failed"
        self._connected()
        logged = LogOnce()  # this connection's bad messages, once per kind
        try:
            # Events that arrive meanwhile wait in the socket: the snapshot is applied
            # before them, so a later StasisStart/End is never undone by it.
            await self.resync()
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self.on_frame(msg.data, logged)
                elif msg.type is WSMsgType.BINARY:
                    self._refuse(AriError("binary", "a binary frame"), logged)
                if self.status == "replaced":
                    break  # Asterisk keeps a replaced socket open and silent: leave it
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("ARI events socket failed: %s", reason(exc))
        finally:
            await ws.close()
        if self.status == "replaced":
            return "replaced"
        self._fail("dropped", "the ARI events socket closed; reconnecting")
        self._start_lost_timer()
        return "closed"

    def _connected(self) -> None:
        self.connections += 1
        if self.status == "replaced":
            self._replaced_logged.log(
                log,
                logging.WARNING,
                "back",
                "took the Stasis app %r back from the other ARI client",
                self.config.app,
                now=asyncio.get_running_loop().time(),
            )
        self.status = "connected"
        self.last_error = ""
        self._conn_logged.forget()
        self._cancel_lost_timer()
        if not self.app_proven and (self._check_task is None or self._check_task.done()):
            self._check_task = self._spawn(self.check.watch(lambda: self.app_proven))
        proven = (
            ""
            if self.app_proven
            else (
                f"; Asterisk accepts any app name, so until a call enters it, check that "
                f"extensions.conf sends calls to Stasis({self.config.app})"
            )
        )
        log.info("connected to ARI at %s, app %s%s", self.rest.base, self.config.app, proven)

    def on_frame(self, frame: str, logged: LogOnce) -> None:
        try:
            outputs = self.core.receive(frame)
        except AriError as exc:
            self._refuse(exc, logged)
            return
        if self._check_task is not None and self.core.entered:
            self._check_task.cancel()  # proven: the dialplan watch has done its job
            self._check_task = None
        self.act(outputs)

    def act(self, outputs: Iterable[Output]) -> None:
        for out in outputs:
            if isinstance(out, Event):
                self.publish(out)
            elif isinstance(out, Answer):
                self._spawn(self.answer(out.call))
            elif isinstance(out, PlaybackFailed):
                self.playback_failed(out.media)
            elif isinstance(out, Replaced):
                self.replaced()
            elif isinstance(out, MediaEntered) and self.music is not None:
                self.music.entered(out.channel_id)
        self._sync_music()

    def _sync_music(self) -> None:
        """Music for every caller who is in, none for anyone who is not."""
        if self.music is not None:
            self.music.sync(self.core.joined)

    def replaced(self) -> None:
        if self.status == "replaced":
            return
        self.status = "replaced"
        self.replacements += 1
        self.last_error = "ApplicationReplaced"
        self._count_error("ari_replaced")
        self._replaced_logged.log(
            log,
            logging.ERROR,
            "replaced",
            "another ARI client took the Stasis app %r (ApplicationReplaced): Asterisk gives "
            "an app to the newest socket, so this relay no longer hears its callers. Stop the "
            "other client (another relay or billboard with the same [ari] app), or give each "
            "its own app name and dialplan Stasis(). This relay takes the app back after a "
            "wait (doubling up to %g s).",
            self.config.app,
            self.config.reconnect_max_s * REPLACED_BACKOFF_FACTOR,
            now=asyncio.get_running_loop().time(),
        )
        for ev in self.core.lose_all():
            self.publish(ev)

    def playback_failed(self, media: str) -> None:
        self._count_error("ari_playback_failed")
        self._playback_logged.log(
            log,
            logging.WARNING,
            media,
            "Asterisk could not play %s to callers (PlaybackFinished: failed): install "
            "Asterisk's sound files (e.g. the asterisk-core-sounds-en package), or set "
            '[ari] prompt to a media it has, or to "" for none',
            media,
        )

    async def answer(self, call: AriCall) -> None:
        """Answer, play the prompt, then the caller joins."""
        path = f"/channels/{quote(call.channel_id, safe='')}"
        status, _ = await self.rest("POST", f"{path}/answer")
        if status is None or not 200 <= status < 300:
            self.core.answer_failed(call.channel_id)
            if status == 404:
                log.info("caller %s hung up before the answer", call.caller)
            return
        if self.config.prompt:
            await self.rest("POST", f"{path}/play", {"media": self.config.prompt})
        self.act(self.core.answered(call.channel_id))

    async def hang_up(self, caller: str, why: str) -> None:
        """End every call of `caller` (a pseudonym), e.g. a kicked one."""
        ids = self.core.kick(caller)
        self._sync_music()
        await asyncio.gather(*(self._delete(i) for i in ids))
        if ids:
            log.info("hung up caller %s (%s): %d call(s)", caller, why, len(ids))

    async def end_calls(self) -> int:
        """The operator's ``end_calls``: every channel of the app is DELETEd — those we
        hear and those Asterisk lists in the app that we do not (yet) — and each caller
        leaves (``hangup``); new calls are still answered. Returns how many."""
        ids = self.core.channel_ids()
        for ev in self.core.leave_all():
            self.publish(ev)
        self._sync_music()  # our music channels go with their callers
        status, body = await self.rest("GET", f"/applications/{quote(self.config.app, safe='')}")
        listed = body.get("channel_ids") if status == 200 and isinstance(body, dict) else None
        if isinstance(listed, list):
            skip = {*ids, *self.core.media_ids}
            ids += [i for i in listed if isinstance(i, str) and i and i not in skip]
        await asyncio.gather(*(self._delete(i) for i in ids))
        if ids:
            log.info("hung up %d call(s): the operator's end_calls", len(ids))
        return len(ids)

    async def hang_up_all(self) -> None:
        """The relay stops: hang up every call (bounded), and their callers leave."""
        ids = self.core.channel_ids()
        for ev in self.core.leave_all():
            self.publish(ev)
        if not ids or self.rest.session is None:
            return
        try:
            async with asyncio.timeout(HANG_UP_ON_STOP_S):
                music = [self.music.stop_all()] if self.music is not None else []
                await asyncio.gather(*music, *(self._delete(i) for i in ids))
            log.info("hung up %d call(s): the relay stops", len(ids))
        except TimeoutError:
            log.warning("the relay stops: %d call(s) may still be up in Asterisk", len(ids))

    async def _delete(self, channel_id: str) -> None:
        path = f"/channels/{quote(channel_id, safe='')}"
        await self.rest("DELETE", path, {"reason": HANGUP_REASON})

    async def resync(self) -> None:
        status, body = await self.rest("GET", f"/applications/{quote(self.config.app, safe='')}")
        ids = body.get("channel_ids") if isinstance(body, dict) else None
        if status != 200 or not isinstance(ids, list):
            if status == 200:
                self._count_error("ari_bad_field")
            log.info("ARI resync skipped: no application details")
            return
        leaves, unknown = self.core.resync(i for i in ids if isinstance(i, str))
        self.act(leaves)
        found = await asyncio.gather(
            *(self.rest("GET", f"/channels/{quote(i, safe='')}") for i in unknown)
        )
        for (status, channel), channel_id in zip(found, unknown, strict=True):
            if status == 200 and isinstance(channel, dict) and channel.get("id") == channel_id:
                self.act(self.core.adopt(channel))
        if self.music is not None:
            await self.music.clean_bridges()
        if leaves or unknown:
            log.info("ARI resync: %d left, %d found", len(leaves), len(unknown))

    # -- a lost Asterisk --

    def _start_lost_timer(self) -> None:
        if self._lost_timer is None and self.core.callers:
            loop = asyncio.get_running_loop()
            self._lost_timer = loop.call_later(self.config.lost_after_s, self._lost)

    def _cancel_lost_timer(self) -> None:
        if self._lost_timer is not None:
            self._lost_timer.cancel()
            self._lost_timer = None

    def _lost(self) -> None:
        self._lost_timer = None
        lost = self.core.lose_all()
        if lost:
            self._count_error("ari_lost_callers")
            log.warning(
                "Asterisk unreachable for %g s ([ari] lost_after_s): its %d caller(s) leave "
                "(reason lost); any still in the app when it answers again come back",
                self.config.lost_after_s,
                len(lost),
            )
        for ev in lost:
            self.publish(ev)
        self._sync_music()

    # -- helpers --

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # our bug: show it
            log.error("ARI task failed", exc_info=task.exception())

    def _fail(self, kind: str, message: str) -> None:
        """A failed or lost connection: counted; logged once until we connect again."""
        self.last_error = kind
        self._count_error(f"ari_{kind}")
        level = logging.ERROR if kind == "unauthorised" else logging.WARNING
        self._conn_logged.log(log, level, kind, "%s", message)

    def _refuse(self, exc: AriError, logged: LogOnce) -> None:
        self._count_error(f"ari_{exc.code}")
        logged.log(log, logging.INFO, exc.code, "ignored an ARI message: %s", exc.message)


ARI = web.AppKey("ari", AriGateway)

__all__ = ["ARI", "AriGateway"]
