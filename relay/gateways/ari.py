"""Asterisk ARI gateway: callers that the dialplan sends into our Stasis application
(``exten => 6001,1,Stasis(dialjam)``) become `join` / `digit` / `leave` events on the
installation's channel.

The relay is the client here: it connects *out* to Asterisk's events socket
``ws://HOST:8088/ari/events?app=NAME&api_key=USER:PASS`` and calls its REST API with
HTTP basic auth. The shapes are Asterisk's own, in its source tree's
``rest-api/api-docs/events.json`` and ``channels.json`` and on
https://docs.asterisk.org/Configuration/Interfaces/Asterisk-REST-Interface-ARI/:

- ``StasisStart {args, channel}`` → ``POST /ari/channels/{id}/answer``, the prompt
  (``POST /ari/channels/{id}/play?media=sound:beep``), then `join`. An answer that
  fails with 404 (the caller already gone) joins nobody.
- ``ChannelDtmfReceived {digit, duration_ms, channel}`` (sent when the key is released)
  → `digit`.
- ``StasisEnd {channel}``, ``ChannelHangupRequest {cause, soft, channel}`` and, as a
  safety net, ``ChannelDestroyed {cause, cause_txt, channel}`` → one `leave`.
- ``ApplicationReplaced`` (another socket took the app; the newer one wins) → we stop.

A ``Channel`` is ``{id, name, state, caller{name, number}, connected{name, number},
accountcode, dialplan{context, exten, priority}, creationtime, language}``; the number
is turned into a keyed pseudonym at once and never kept or logged.

The socket reconnects with capped exponential backoff and jitter. After each connect
``GET /ari/applications/{app}`` (``{name, channel_ids, bridge_ids, endpoint_ids,
device_names}``) resyncs: callers we knew that are gone leave; channels we did not know
are fetched (``GET /ari/channels/{id}``) and join.

`AriCalls` is the pure core (JSON in, actions and events out, no I/O); `AriGateway`
only runs the socket and the REST calls. A bad message is Asterisk's (or a proxy's)
fault: counted, logged once per kind, and the client goes on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import WSMsgType, hdrs, web

from ..backoff import backoff_delay
from ..config import AriConfig, RelayConfig, pseudonym_key
from ..contract.errors import PeerError
from ..contract.privacy import call_pseudonym, masked, number_digits, pseudonym
from ..ratelimit import LogOnce
from .common import (
    KEYS,
    CountError,
    Event,
    Publisher,
    PublishFn,
    digit_event,
    join_event,
    json_object,
    leave_event,
)

log = logging.getLogger("relay.ari")

# The first wait after a failed connect; it doubles up to [ari] reconnect_max_s.
INITIAL_BACKOFF_S = 0.5
REST_TIMEOUT_S = 5.0
# Channels that ended are remembered this long (by count) so that a late event or a
# resync racing a hang-up never brings them back.
ENDED_MEMORY = 1024
# Events that carry nothing for us but are normal on an app's socket.
QUIET_EVENTS = frozenset(
    {
        "ChannelCreated",
        "ChannelStateChange",
        "ChannelVarset",
        "ChannelDialplan",
        "ChannelCallerId",
        "ChannelConnectedLine",
        "ChannelEnteredBridge",
        "ChannelLeftBridge",
        "ChannelHold",
        "ChannelUnhold",
        "ChannelTalkingStarted",
        "ChannelTalkingFinished",
        "ChannelToneDetected",
        "ChannelUserevent",
        "PlaybackStarted",
        "PlaybackContinuing",
        "PlaybackFinished",
        "BridgeCreated",
        "BridgeDestroyed",
        "Dial",
        "DeviceStateChanged",
        "EndpointStateChange",
        "ApplicationRegistered",
        "ApplicationUnregistered",
    }
)
LEAVE_EVENTS = frozenset({"StasisEnd", "ChannelHangupRequest", "ChannelDestroyed"})


# -- values --


@dataclass(frozen=True)
class AriCall:
    """A caller on one Asterisk channel (no number: only its pseudonym and "…12")."""

    channel_id: str
    caller: str
    display: str | None


@dataclass(frozen=True)
class Answer:
    """Answer this channel and play the prompt; then tell the core (`answered` or
    `answer_failed`)."""

    call: AriCall


@dataclass(frozen=True)
class Replaced:
    """Another client took our application: stop (the newer client wins)."""


Output = Event | Answer | Replaced


class AriError(PeerError):
    """A message the client cannot use: the peer's fault, never the relay's."""


# -- pure helpers --


def ari_urls(url: str) -> tuple[str, str]:
    """`[ari] url` → (REST base "http(s)://HOST:PORT/ari", events "ws(s)://…/ari/events").
    http(s) and ws(s) are both accepted, with or without a trailing /ari or /ari/events."""
    base = url.strip().rstrip("/")
    for suffix in ("/ari/events", "/ari"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    scheme, sep, rest = base.partition("://")
    http = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    ws = {"http": "ws", "https": "wss"}.get(http, http)
    return f"{http}{sep}{rest}/ari", f"{ws}{sep}{rest}/ari/events"


def basic_auth(username: str, password: str) -> str:
    """The Authorization header of HTTP basic auth (RFC 7617), as ARI's REST API takes."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _channel(msg: dict[str, Any]) -> dict[str, Any]:
    channel = msg.get("channel")
    if not isinstance(channel, dict):
        raise AriError("bad_field", "channel missing or not an object")
    if not isinstance(channel.get("id"), str) or not channel["id"]:
        raise AriError("bad_field", "channel.id missing or not a string")
    return channel


# -- the callers of one application (pure core) --


@dataclass
class AriCalls:
    """ARI events in, actions and events out. Each channel goes answering → joined →
    ended; a `leave` is given once per joined channel. Raises `AriError` for a bad
    message and keeps going: the next good one works."""

    key: bytes
    channel: str
    answering: dict[str, AriCall] = field(default_factory=dict)
    joined: dict[str, AriCall] = field(default_factory=dict)
    ended: OrderedDict[str, None] = field(default_factory=OrderedDict)

    @property
    def callers(self) -> int:
        return len(self.joined)

    def receive(self, frame: str | bytes) -> list[Output]:
        msg, kind = json_object(frame, "type", AriError)
        if kind == "StasisStart":
            return self.start(_channel(msg))
        if kind == "ChannelDtmfReceived":
            channel = _channel(msg)
            digit = msg.get("digit")
            if not isinstance(digit, str) or digit not in KEYS:
                raise AriError("bad_digit", "digit is not one of 0-9 * # A-D")
            return self.digit(channel, digit)
        if kind in LEAVE_EVENTS:
            return list(self.leave(_channel(msg)["id"]))
        if kind == "ApplicationReplaced":
            return [Replaced()]
        if kind in QUIET_EVENTS:
            return []
        raise AriError("unknown_event", f"unknown event type {kind[:40]!r}")

    def start(self, channel: dict[str, Any]) -> list[Output]:
        """A channel entered the app (StasisStart): answer it first."""
        channel_id = channel["id"]
        if channel_id in self.answering or channel_id in self.joined or channel_id in self.ended:
            return []  # a repeat (a resync racing the event), or a late one
        call = self.call_for(channel)
        self.answering[channel_id] = call
        return [Answer(call)]

    def adopt(self, channel: dict[str, Any]) -> list[Output]:
        """A channel in the app that we did not know (found by a resync): one that is
        already up joins at once, one still ringing is answered first."""
        if channel.get("state") != "Up":
            return self.start(channel)
        channel_id = channel["id"]
        if channel_id in self.answering or channel_id in self.joined or channel_id in self.ended:
            return []
        return [self._join(self.call_for(channel))]

    def answered(self, channel_id: str) -> list[Output]:
        """The answer (and prompt) went through: the caller joins, unless they have
        hung up meanwhile or a key press already joined them."""
        call = self.answering.pop(channel_id, None)
        return [] if call is None else [self._join(call)]

    def answer_failed(self, channel_id: str) -> None:
        """Asterisk would not answer (404: the channel is gone): nobody joins."""
        self.answering.pop(channel_id, None)

    def digit(self, channel: dict[str, Any], key: str) -> list[Output]:
        channel_id = channel["id"]
        if channel_id in self.ended:
            return []
        out: list[Output] = []
        call = self.joined.get(channel_id)
        if call is None:
            # A key from a channel being answered, or one we never saw start: the
            # caller is plainly there, and a digit from an unknown caller implies a join.
            call = self.answering.pop(channel_id, None) or self.call_for(channel)
            out.append(self._join(call))
        out.append(digit_event(self.channel, call.caller, key, "ari"))
        return out

    def leave(self, channel_id: str) -> list[Event]:
        """The channel left the app or hung up: its caller leaves (once)."""
        self.answering.pop(channel_id, None)
        call = self.joined.pop(channel_id, None)
        if channel_id not in self.ended:
            self.ended[channel_id] = None
            while len(self.ended) > ENDED_MEMORY:
                self.ended.popitem(last=False)
        return [] if call is None else [leave_event(self.channel, call.caller)]

    def resync(self, channel_ids: Iterable[str]) -> tuple[list[Event], list[str]]:
        """After a reconnect: the app's `channel_ids` now. Returns the leaves of the
        callers that are gone and the ids we do not know (to fetch and `adopt`)."""
        present = set(channel_ids)
        leaves: list[Event] = []
        for channel_id in [*self.answering, *self.joined]:
            if channel_id not in present:
                leaves.extend(self.leave(channel_id))
        unknown = [
            channel_id
            for channel_id in sorted(present)
            if channel_id not in self.answering
            and channel_id not in self.joined
            and channel_id not in self.ended
        ]
        return leaves, unknown

    def leave_all(self) -> list[Event]:
        """Everyone leaves (we stop hearing them)."""
        return [
            ev for channel_id in [*self.answering, *self.joined] for ev in self.leave(channel_id)
        ]

    def call_for(self, channel: dict[str, Any]) -> AriCall:
        """The channel's caller: a pseudonym of `caller.number` (the number stops here),
        or, with no number, one of the channel itself."""
        channel_id = channel["id"]
        caller = channel.get("caller")
        number = caller.get("number") if isinstance(caller, dict) else None
        digits = number_digits(number) if isinstance(number, str) else ""
        if digits:
            return AriCall(channel_id, pseudonym(digits, self.key), masked(digits))
        return AriCall(channel_id, call_pseudonym(f"ari channel {channel_id}", self.key), None)

    def _join(self, call: AriCall) -> Event:
        self.joined[call.channel_id] = call
        return join_event(self.channel, call.caller, "ari", call.display)


# -- the aiohttp adapter --


class AriGateway:
    """Runs the ARI client for the relay: started and stopped with the app
    (`app.cleanup_ctx`), so `python -m relay` and the billboard's embedded relay both
    have it. `status` is connecting, connected, reconnecting, replaced or stopped."""

    def __init__(
        self,
        config: AriConfig,
        relay: RelayConfig,
        publish: PublishFn,
        count_error: CountError,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.channel = config.channel_for(relay)
        self.rest_url, self.events_url = ari_urls(config.url)
        self.publish = Publisher(publish, count_error, log)
        self._count_error = count_error
        key = pseudonym_key(relay)
        self.core = AriCalls(key, self.channel)
        self.status = "connecting"
        self.connections = 0
        self.last_error = ""
        self._rand = rand  # the backoff's jitter
        self._logged = LogOnce()  # REST failures, once per kind
        self._conn_logged = LogOnce()  # connection failures, once until connected
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def mount(self, app: web.Application) -> None:
        app[ARI] = self
        app.cleanup_ctx.append(self.running)

    def health(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "app": self.config.app,
            "callers": self.core.callers,
            "connections": self.connections,
            "last_error": self.last_error or None,
        }

    async def running(self, app: web.Application) -> AsyncIterator[None]:
        """The client runs while the app does."""
        timeout = aiohttp.ClientTimeout(total=REST_TIMEOUT_S)
        headers = {hdrs.AUTHORIZATION: basic_auth(self.config.username, self.config.password)}
        self._session = aiohttp.ClientSession(headers=headers, timeout=timeout)
        task = asyncio.get_running_loop().create_task(self.run())
        try:
            yield
        finally:
            task.cancel()
            for t in list(self._tasks):
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._session.close()
            if self.status != "replaced":
                self.status = "stopped"

    async def run(self) -> None:
        """Connect, listen, and after every loss wait (backoff) and connect again,
        until Asterisk gives our app to another client."""
        attempt = 0
        while True:
            try:
                connected = await self.listen_once()
            except Exception:  # our bug: show it, and keep the callers' door open
                log.exception("the ARI client failed; reconnecting")
                connected = False
            if self.status == "replaced":
                return
            if connected:
                attempt = 0  # a good connection: start the backoff over
            self.status = "reconnecting"
            delay = backoff_delay(
                attempt, INITIAL_BACKOFF_S, self.config.reconnect_max_s, self._rand
            )
            attempt += 1
            log.debug("reconnecting to ARI in %.2f s (attempt %d)", delay, attempt)
            await asyncio.sleep(delay)

    async def listen_once(self) -> bool:
        """One connection: connect, resync, read events until it closes. Returns
        whether the socket was opened at all."""
        session = self._session
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
            return False
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._fail(
                "unreachable",
                f"cannot reach Asterisk's ARI at {self.rest_url} ({_reason(exc)}); retrying "
                f"with backoff up to {self.config.reconnect_max_s:g} s",
            )
            return False
        self._ws = ws
        self.connections += 1
        self.status = "connected"
        self.last_error = ""
        self._conn_logged.forget()
        log.info("connected to ARI at %s, app %s", self.rest_url, self.config.app)
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
                    break
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("ARI events socket failed: %s", _reason(exc))
        finally:
            self._ws = None
            await ws.close()
        if self.status != "replaced":
            self._fail("dropped", "the ARI events socket closed; reconnecting")
        return True

    def on_frame(self, frame: str, logged: LogOnce) -> None:
        try:
            outputs = self.core.receive(frame)
        except AriError as exc:
            self._refuse(exc, logged)
            return
        self.act(outputs)

    def act(self, outputs: Iterable[Output]) -> None:
        for out in outputs:
            if isinstance(out, Event):
                self.publish(out)
            elif isinstance(out, Answer):
                self._spawn(self.answer(out.call))
            else:
                self.replaced()

    def replaced(self) -> None:
        if self.status == "replaced":
            return
        self.status = "replaced"
        self.last_error = "ApplicationReplaced"
        self._count_error("ari_replaced")
        log.error(
            "another ARI client took the Stasis app %r (ApplicationReplaced): Asterisk gives "
            "an app to the newest socket, so this relay stops listening. Stop the other client "
            "(another relay or billboard with the same [ari] app), or give each its own app "
            "name and dialplan Stasis(), then restart this relay.",
            self.config.app,
        )
        for ev in self.core.leave_all():
            self.publish(ev)

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
        if leaves or unknown:
            log.info("ARI resync: %d left, %d found", len(leaves), len(unknown))

    async def rest(
        self, method: str, path: str, params: dict[str, str] | None = None
    ) -> tuple[int | None, Any]:
        """One REST call: (status, JSON body or None); (None, None) when it did not get
        through. Never raises for the peer's failures: a REST call never crashes us."""
        session = self._session
        assert session is not None
        try:
            async with session.request(method, self.rest_url + path, params=params) as resp:
                body: Any = None
                if resp.content_type == "application/json":
                    with contextlib.suppress(ValueError):
                        body = orjson.loads(await resp.read())
                if resp.status >= 400:
                    said = body.get("message") if isinstance(body, dict) else None
                    self._count_error(f"ari_rest_{resp.status}")
                    self._logged.log(
                        log,
                        logging.WARNING if resp.status >= 500 else logging.INFO,
                        f"rest_{resp.status}",
                        "ARI %s %s: HTTP %d (%s)",
                        method,
                        path,
                        resp.status,
                        str(said)[:80] if said else "no message",
                    )
                return resp.status, body
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._count_error("ari_rest_failed")
            self._logged.log(
                log,
                logging.WARNING,
                "rest_failed",
                "ARI %s %s failed: %s",
                method,
                path,
                _reason(exc),
            )
            return None, None

    # -- helpers --

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

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


def _reason(exc: BaseException) -> str:
    """Why a connection failed, without the URL (it may hold the api_key)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


ARI = web.AppKey("ari", AriGateway)

__all__ = [
    "ARI",
    "Answer",
    "AriCall",
    "AriCalls",
    "AriError",
    "AriGateway",
    "Replaced",
    "ari_urls",
]
