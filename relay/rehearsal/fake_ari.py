"""A fake Asterisk ARI server that speaks the real wire format, for tests and for
rehearsals (`python -m relay.rehearsal --via ari`): phones "call", "press" and "hang up"
through it, and the relay's ARI client cannot tell it from Asterisk.

It behaves as Asterisk master does (checked against one built from its source; the
shapes are its ``rest-api/api-docs/*.json``, documented at
https://docs.asterisk.org/Configuration/Interfaces/Asterisk-REST-Interface-ARI/):

- ``GET /ari/events?app=NAME&api_key=USER:PASS`` — the events WebSocket; 401 on bad
  credentials. *Any* app name is accepted (it registers that app), whether or not the
  dialplan's ``Stasis()`` names it. One socket per app: when a second client connects
  for the same app, the first gets ``ApplicationReplaced`` and is kept open and silent;
  when the newer one leaves, the app is free (no socket hears it) until a client
  connects again.
- Calls go to the dialplan's app (`app`): while no socket holds it ("Stasis app 'NAME'
  not active") a call falls through the dialplan and never enters the app
  (`fell_through`), and events for the app's channels are dropped, not queued.
- ``POST /ari/channels/{id}/answer`` — 204 and ``ChannelStateChange`` (state "Up"), or
  404 ``{"message":"Channel not found"}``.
- ``POST /ari/channels/{id}/play?media=…`` — 201 with a ``Playback`` ``{id, media_uri,
  target_uri, language, state: "queued"}`` even when the sound is missing; then
  ``PlaybackStarted`` and ``PlaybackFinished`` (state "done", or "failed" for a
  ``sound:`` not in `sounds`). 400 without media; 404 for an unknown channel.
- ``DELETE /ari/channels/{id}?reason=…`` — 204; the call ends (``StasisEnd``).
- ``GET /ari/channels/{id}`` — the ``Channel``, or 404.
- ``GET /ari/applications/{app}`` — ``{name, channel_ids, bridge_ids, endpoint_ids,
  device_names, events_allowed, events_disallowed}`` for a registered app, or 404;
  ``GET /ari/applications`` — all of them; ``PUT /ari/applications/{app}/eventFilter``
  ``{"allowed": [{"type": …}]}`` — the app hears only those types.
- A socket with ``subscribeAll=true`` hears ``ChannelDialplan {dialplan_app,
  dialplan_app_data, channel}`` when a call starts ``Stasis(app)`` (whether it then
  enters the app or falls through); the fake sends such a socket no other event of
  other apps' channels.

Events (``type``, ``timestamp``, ``application``, ``asterisk_id`` on each):
``StasisStart {args: [], channel}`` (state "Ring"; the dialplan's priority is the
``Stasis()`` line's), ``ChannelDtmfReceived {digit, duration_ms, channel}`` (the time the
key was held, measured), and on a hang-up ``ChannelHangupRequest {cause, channel}`` (no
``soft``) then ``StasisEnd {channel}`` — no ``ChannelDestroyed`` reaches the app after
``StasisEnd``.

A ``Channel`` is ``{id, protocol_id, name, state, caller{name, number},
connected{name, number}, accountcode, dialplan{context, exten, priority, app_name,
app_data}, creationtime, language}``. REST calls need HTTP basic auth (or
``?api_key=``), else 401.

External media channels and bridges (``POST /ari/channels/externalMedia``,
``/ari/bridges…``), with a UDP socket recording the RTP each external channel gets,
are `media`'s (relay/rehearsal/fake_ari_media.py).

`close` is Asterisk stopping: every call ends and no event says so; `start` on the same
port afterwards is a restarted Asterisk with no calls and no apps.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from .fake_ari_media import FakeMedia

ASTERISK_ID = "02:42:ac:11:00:02"
# The dialplan the fake stands for (the README's): NoOp at priority 1, Stasis at 2.
STASIS_PRIORITY = 2
# DELETE /channels/{id}: the simple reasons Asterisk takes (channels.json).
HANGUP_REASONS = frozenset(
    {
        "normal",
        "busy",
        "congestion",
        "no_answer",
        "timeout",
        "rejected",
        "unallocated",
        "normal_unspecified",
        "number_incomplete",
        "codec_mismatch",
        "interworking",
        "failure",
        "answered_elsewhere",
    }
)


def timestamp() -> str:
    """Asterisk's event time: "2026-11-26T00:31:02.518+0000"."""
    now = datetime.now().astimezone()
    return (
        now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}" + now.strftime("%z")
    )


def channel_json(
    channel_id: str,
    number: str | None,
    state: str = "Ring",
    name: str = "PJSIP/dialjam",
    app: str = "dialjam",
) -> dict[str, Any]:
    """An ARI ``Channel`` for a caller from `number` (None: no caller id), in the
    dialplan's ``Stasis(app)`` line."""
    return {
        "id": channel_id,
        # PJSIP's is the SIP Call-ID (Local channels have "").
        "protocol_id": f"{channel_id.replace('.', '-')}@198.51.100.7",
        "name": f"{name}-{channel_id.rsplit('.', 1)[-1].zfill(8)}",
        "state": state,
        "caller": {"name": "", "number": number or ""},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "from-external",
            "exten": "6001",
            "priority": STASIS_PRIORITY,
            "app_name": "Stasis",
            "app_data": app,
        },
        "creationtime": timestamp(),
        "language": "en",
    }


class FakeAri:
    """An ARI server on a free port of `host`; see the module's docstring. `app` is the
    app the dialplan's ``Stasis()`` names; `sounds` the ``sound:`` files it has."""

    def __init__(
        self,
        app: str = "dialjam",
        username: str = "dialjam",
        password: str = "dialjam",
        sounds: frozenset[str] = frozenset({"beep"}),
    ) -> None:
        self.app = app
        self.username = username
        self.password = password
        self.sounds = sounds
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        # Force an HTTP status on the REST calls whose path ends with a key ("play").
        self.failures: dict[str, int] = {}
        self.channels: dict[str, dict[str, Any]] = {}  # in the dialplan's app
        self.answered_ids: set[str] = set()
        self.hung_up: dict[str, str] = {}  # channels ended by DELETE: their reason
        self.fell_through: list[str] = []  # calls while no socket held the app
        # Every app a client registered, and the socket that hears it (None: the app
        # is free, "not active").
        self.apps: dict[str, web.WebSocketResponse | None] = {}
        self.replaced: list[web.WebSocketResponse] = []  # open, and silent
        self.all_events: set[str] = set()  # apps registered with subscribeAll
        self.filters: dict[str, list[dict[str, Any]]] = {}  # each app's events_allowed
        self.refused = 0  # event sockets refused for bad credentials
        self.connects = 0  # sockets for the dialplan's app since the start (reconnects count)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._playbacks = itertools.count(1)
        self._keys_down: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._epoch = int(time.time())
        self.media = FakeMedia(self, timestamp)  # external media channels, bridges, their RTP

    # -- control --

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve; returns the base URL ("http://127.0.0.1:PORT")."""
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_post("/ari/channels/{id}/answer", self._answer)
        app.router.add_post("/ari/channels/{id}/play", self._play)
        app.router.add_get("/ari/channels/{id}", self._get_channel)
        app.router.add_delete("/ari/channels/{id}", self._delete_channel)
        app.router.add_get("/ari/applications", self._list_applications)
        app.router.add_get("/ari/applications/{app}", self._get_application)
        app.router.add_put("/ari/applications/{app}/eventFilter", self._filter)
        self.media.mount(app)
        app.on_shutdown.append(self._close_clients)
        runner = web.AppRunner(app, shutdown_timeout=1.0, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Asterisk stops: clients see the socket close, every call ends (no event
        says so), the apps are forgotten; a `start` after is a fresh Asterisk."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        for task in list(self._tasks):
            task.cancel()
        self.apps.clear()
        self.replaced.clear()
        self.all_events.clear()
        self.filters.clear()
        self.channels.clear()
        self.media.close()
        self._epoch += 1  # a restarted Asterisk's channel ids are new
        await self._notify()

    async def wait_client(self, timeout: float = 10.0) -> None:
        """Until a client's events socket holds the dialplan's app."""
        await self._wait(lambda: self.listener is not None, timeout)

    async def wait_clients(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` sockets for the dialplan's app have connected since the start
        (reconnects count)."""
        await self._wait(lambda: self.connects >= count, timeout)

    async def call(self, number: str | None = "+15551234567") -> str:
        """A phone calls in: a new channel enters the app (StasisStart). Returns its id
        as soon as the event is sent; the client answers in its own time. While no
        socket holds the app, the call falls through the dialplan instead (its id is
        in `fell_through`, never in `channels`)."""
        channel_id = self.new_id()
        channel = channel_json(channel_id, number, app=self.app)
        dialplan = {"dialplan_app": "Stasis", "dialplan_app_data": self.app}
        await self._to_all_events({"type": "ChannelDialplan", **dialplan, "channel": channel})
        if self.listener is None:
            self.fell_through.append(channel_id)  # "Stasis app 'NAME' not active"
            await self._notify()
            return channel_id
        self.channels[channel_id] = channel
        await self.send({"type": "StasisStart", "args": [], "channel": channel})
        return channel_id

    async def answered(self, channel_id: str, timeout: float = 5.0) -> None:
        """Until the client has answered `channel_id`."""
        await self._wait(lambda: channel_id in self.answered_ids, timeout)

    async def ended(self, channel_id: str, timeout: float = 5.0) -> None:
        """Until `channel_id`'s call has ended."""
        await self._wait(lambda: channel_id not in self.channels, timeout)

    def key_down(self, channel_id: str) -> None:
        """The caller's key goes down (ARI says nothing until it is released)."""
        self._keys_down[channel_id] = time.monotonic()

    async def key_up(self, channel_id: str, digit: str) -> None:
        """The key is released: ``ChannelDtmfReceived`` with the time it was held."""
        down = self._keys_down.pop(channel_id, None)
        held = 0 if down is None else round((time.monotonic() - down) * 1000)
        channel = self.channels.get(channel_id)
        if channel is None:
            return  # the call has ended
        event = {"type": "ChannelDtmfReceived", "digit": digit, "duration_ms": held}
        await self.send({**event, "channel": channel})

    async def press(self, channel_id: str, digit: str, held_s: float = 0.0) -> None:
        """The caller presses a key, holds it `held_s`, and releases it."""
        self.key_down(channel_id)
        if held_s > 0:
            await asyncio.sleep(held_s)
        await self.key_up(channel_id, digit)

    async def hang_up(self, channel_id: str, cause: int = 16) -> None:
        """The caller hangs up: ChannelHangupRequest (no ``soft``), then StasisEnd."""
        channel = self.channels.pop(channel_id, None)
        if channel is None:
            return
        await self.send({"type": "ChannelHangupRequest", "cause": cause, "channel": channel})
        for event in self.media.leave(channel_id):
            await self.send(event)
        await self.send({"type": "StasisEnd", "channel": channel})
        await self._notify()

    async def send(self, event: dict[str, Any] | str | bytes) -> None:
        """Send an event (the common fields are added) or a raw text frame to the
        socket holding the app; dropped when none does (as Asterisk does)."""
        ws = self.listener
        if ws is None:
            return
        if isinstance(event, dict):
            event = self._stamped(event)
        text = event.decode() if isinstance(event, bytes) else event
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(text)

    def add_channel(self, number: str | None = "+15551234567", state: str = "Up") -> str:
        """A channel already in the app that the client never heard of (it entered
        before a relay restart, or under another client); no event. Returns its id."""
        channel_id = self.new_id()
        self.channels[channel_id] = channel_json(channel_id, number, state, app=self.app)
        return channel_id

    def remove_channel(self, channel_id: str) -> None:
        """The channel ends without an event reaching any client (its events dropped
        while no socket held the app)."""
        self.channels.pop(channel_id, None)

    async def drop(self) -> None:
        """The events socket breaks (a network blip): the client must reconnect."""
        for ws in self._sockets():
            await ws.close(code=1011, message=b"dropped")

    @property
    def listener(self) -> web.WebSocketResponse | None:
        """The socket that hears the dialplan's app, if one does."""
        return self._holder(self.app)

    # -- server side --

    def _holder(self, app: str) -> web.WebSocketResponse | None:
        ws = self.apps.get(app)
        return ws if ws is not None and not ws.closed else None

    def _sockets(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self.apps.values() if ws is not None] + self.replaced

    async def _to_all_events(self, event: dict[str, Any]) -> None:
        """An event of any channel, to the apps registered with subscribeAll (as far as
        their event filter allows)."""
        for app in sorted(self.all_events):
            ws = self._holder(app)
            allowed = self.filters.get(app)
            if ws is None or (allowed and event["type"] not in {f["type"] for f in allowed}):
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(self._stamped(event, app).decode())

    def authorised(self, request: web.Request) -> bool:
        given = request.query.get("api_key")
        if given is None:
            header = request.headers.get("Authorization", "")
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "basic":
                return False
            try:
                given = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
        return given == f"{self.username}:{self.password}"

    def _stamped(self, event: dict[str, Any], app: str | None = None) -> bytes:
        """An event with the fields Asterisk adds to every one (Event/Message models)."""
        stamp = {
            "timestamp": timestamp(),
            "asterisk_id": ASTERISK_ID,
            "application": app or self.app,
        }
        return orjson.dumps({**event, **stamp})

    def record(self, request: web.Request) -> None:
        self.requests.append((request.method, request.path, dict(request.query)))

    def new_id(self) -> str:
        """A new channel's id, as Asterisk's look ("EPOCH.N")."""
        return f"{self._epoch}.{next(self._ids)}"

    def later(
        self, *events: dict[str, Any], before: Callable[[], bool] | None = None, after_s: float = 0
    ) -> None:
        """Send events after the REST answer has gone out (as Asterisk's threads do), or
        `after_s` later; `before` runs just before, and they are not sent if it says
        False."""

        async def send() -> None:
            await asyncio.sleep(after_s)
            if before is not None and not before():
                return
            for event in events:
                await self.send(event)

        task = asyncio.get_running_loop().create_task(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if not self.authorised(request):
            self.refused += 1
            await self._notify()
            return _error(401, "Authentication required")
        app = request.query.get("app")
        if not app:
            return _error(400, "Invalid application provided in param [app].")
        ws = web.WebSocketResponse(protocols=("ari",))
        await ws.prepare(request)
        old = self._holder(app)
        if old is not None:
            # Asterisk: the newer WebSocket wins; the older one receives this event and
            # stays open, hearing nothing more.
            with contextlib.suppress(ConnectionError, RuntimeError):
                await old.send_str(self._stamped({"type": "ApplicationReplaced"}, app).decode())
            self.replaced.append(old)
        self.apps[app] = ws
        if request.query.get("subscribeAll") == "true":
            self.all_events.add(app)
        if app == self.app:
            self.connects += 1
        await self._notify()
        try:
            async for msg in ws:
                if msg.type is WSMsgType.ERROR:
                    break
        finally:
            # The app stays registered; when its socket goes, no one hears it.
            if self.apps.get(app) is ws:
                self.apps[app] = None
            with contextlib.suppress(ValueError):
                self.replaced.remove(ws)
            await self._notify()
        return ws

    async def _rest_guard(
        self, request: web.Request, anywhere: bool = False
    ) -> dict[str, Any] | web.Response:
        """Record the call; the channel it names (`anywhere`: in the app or not yet, as
        an external media channel before its StasisStart), or the error to answer."""
        self.record(request)
        if not self.authorised(request):
            return _error(401, "Authentication required")
        for suffix, status in self.failures.items():
            if request.path.endswith(suffix):
                return _error(status, "Internal Server Error" if status >= 500 else "Failed")
        channel = self.channels.get(request.match_info["id"])
        if channel is None and anywhere:
            channel = self.media.pending(request.match_info["id"])
        if channel is None:
            return _error(404, "Channel not found")
        return channel

    async def _answer(self, request: web.Request) -> web.Response:
        channel = await self._rest_guard(request)
        if isinstance(channel, web.Response):
            return channel
        if channel["state"] != "Up":
            channel["state"] = "Up"
            self.later({"type": "ChannelStateChange", "channel": dict(channel)})
        self.answered_ids.add(channel["id"])
        await self._notify()
        return web.Response(status=204)

    async def _play(self, request: web.Request) -> web.Response:
        channel = await self._rest_guard(request)
        if isinstance(channel, web.Response):
            return channel
        media = request.query.get("media")
        if not media:
            return _error(400, "media: Missing parameter")
        playback = {
            "id": f"{self._epoch}-playback-{next(self._playbacks)}",
            "media_uri": media,
            "target_uri": f"channel:{channel['id']}",
            "language": channel["language"],
            "state": "queued",
        }
        # 201 even for a sound Asterisk does not have: the failure comes as an event.
        missing = any(
            uri.startswith("sound:") and uri[len("sound:") :] not in self.sounds
            for uri in media.split(",")
        )
        self.later(
            {"type": "PlaybackStarted", "playback": {**playback, "state": "playing"}},
            {
                "type": "PlaybackFinished",
                "playback": {**playback, "state": "failed" if missing else "done"},
            },
        )
        await self._notify()
        return web.json_response(playback, status=201)

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = await self._rest_guard(request)
        if isinstance(channel, web.Response):
            return channel
        return web.json_response(channel)

    async def _delete_channel(self, request: web.Request) -> web.Response:
        channel = await self._rest_guard(request, anywhere=True)
        if isinstance(channel, web.Response):
            return channel
        why = request.query.get("reason", "normal")
        if "reason" in request.query and "reason_code" in request.query:
            return _error(400, "reason and reason_code are mutually exclusive")
        if why not in HANGUP_REASONS:
            return _error(400, f"Invalid reason for hangup reason provided: {why}")
        in_app = self.channels.pop(channel["id"], None) is not None
        self.hung_up[channel["id"]] = why
        ended = [{"type": "StasisEnd", "channel": channel}] if in_app else []
        self.later(*self.media.leave(channel["id"]), *ended)
        await self._notify()
        return web.Response(status=204)

    def _application(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "channel_ids": list(self.channels) if name == self.app else [],
            "bridge_ids": self.media.bridge_ids() if name == self.app else [],
            "endpoint_ids": [],
            "device_names": [],
            "events_allowed": self.filters.get(name, []),
            "events_disallowed": [],
        }

    async def _list_applications(self, request: web.Request) -> web.Response:
        self.record(request)
        if not self.authorised(request):
            return _error(401, "Authentication required")
        return web.json_response([self._application(name) for name in self.apps])

    async def _get_application(self, request: web.Request) -> web.Response:
        self.record(request)
        if not self.authorised(request):
            return _error(401, "Authentication required")
        name = request.match_info["app"]
        if name not in self.apps:
            return _error(404, "Application not found")
        return web.json_response(self._application(name))

    async def _filter(self, request: web.Request) -> web.Response:
        """PUT …/eventFilter {"allowed": [{"type": …}]} (Asterisk's app_event_filter_set)."""
        self.record(request)
        if not self.authorised(request):
            return _error(401, "Authentication required")
        name = request.match_info["app"]
        if name not in self.apps:
            return _error(404, "Application not found")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Bad request")
        allowed = body.get("allowed", []) if isinstance(body, dict) else None
        if not isinstance(allowed, list) or not all(
            isinstance(f, dict) and isinstance(f.get("type"), str) for f in allowed
        ):
            return _error(400, "Bad request")
        self.filters[name] = allowed
        return web.json_response(self._application(name))

    async def _close_clients(self, app: web.Application) -> None:
        for ws in self._sockets():
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close(code=1001, message=b"Asterisk shutting down")

    # -- waiting --

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, check: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(check)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)
