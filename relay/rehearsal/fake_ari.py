"""A fake Asterisk ARI server that speaks the real wire format, for tests and for
rehearsals (`python -m relay.rehearsal --via ari`): phones "call", "press" and "hang up"
through it, and the relay's ARI client cannot tell it from Asterisk.

What it serves (shapes from Asterisk's ``rest-api/api-docs/*.json``, documented at
https://docs.asterisk.org/Configuration/Interfaces/Asterisk-REST-Interface-ARI/):

- ``GET /ari/events?app=NAME&api_key=USER:PASS`` — the events WebSocket; 401 on bad
  credentials. One socket per app, as in Asterisk: when a second client connects for the
  same app, the first gets ``{"type":"ApplicationReplaced","application":NAME,…}`` and
  is closed.
- ``POST /ari/channels/{id}/answer`` — 204, or 404 ``{"message":"Channel not found"}``.
- ``POST /ari/channels/{id}/play?media=…`` — 201 with a ``Playback`` ``{id, media_uri,
  target_uri, language, state: "queued"}``; 400 without media; 404 for an unknown channel.
- ``GET /ari/channels/{id}`` — the ``Channel``, or 404.
- ``GET /ari/applications/{app}`` — the ``Application`` ``{name, channel_ids,
  bridge_ids, endpoint_ids, device_names}``, or 404.

Events (``type``, ``timestamp``, ``application``, ``asterisk_id`` on each):

- ``StasisStart {args: [], channel}`` — the channel's ``state`` is "Ring";
- ``ChannelDtmfReceived {digit, duration_ms, channel}``;
- ``ChannelHangupRequest {cause: 16, soft: false, channel}``, ``StasisEnd {channel}``,
  ``ChannelDestroyed {cause: 16, cause_txt: "Normal Clearing", channel}``.

A ``Channel`` is ``{id, name, state, caller{name, number}, connected{name, number},
accountcode, dialplan{context, exten, priority, app_name, app_data}, creationtime,
language}``. REST calls need HTTP basic auth (or ``?api_key=``), else 401.

Channels live in the fake whether a client is connected or not: a `call` or `hang_up`
while no client listens changes the channels without an event (what a client finds by
resyncing). `close` then `start` on the same port is an Asterisk restart that kept its
calls.
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

ASTERISK_ID = "02:42:ac:11:00:02"


def timestamp() -> str:
    """Asterisk's event time: "2026-11-26T00:31:02.518+0000"."""
    now = datetime.now().astimezone()
    return (
        now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}" + now.strftime("%z")
    )


def channel_json(
    channel_id: str, number: str | None, state: str = "Ring", name: str = "PJSIP/dialjam"
) -> dict[str, Any]:
    """An ARI ``Channel`` for a caller from `number` (None: no caller id)."""
    return {
        "id": channel_id,
        "name": f"{name}-{channel_id.rsplit('.', 1)[-1].zfill(8)}",
        "state": state,
        "caller": {"name": "", "number": number or ""},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "from-external",
            "exten": "6001",
            "priority": 1,
            "app_name": "Stasis",
            "app_data": "dialjam",
        },
        "creationtime": timestamp(),
        "language": "en",
    }


class FakeAri:
    """An ARI server on a free port of `host`; see the module's docstring."""

    def __init__(
        self, app: str = "dialjam", username: str = "dialjam", password: str = "dialjam"
    ) -> None:
        self.app = app
        self.username = username
        self.password = password
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        # Force an HTTP status on the REST calls whose path ends with a key ("play").
        self.failures: dict[str, int] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.answered_ids: set[str] = set()
        self.clients: list[web.WebSocketResponse] = []  # of our app; the last one listens
        self.refused = 0  # event sockets refused for bad credentials
        self.connects = 0  # event sockets accepted since the start (reconnects count)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._playbacks = itertools.count(1)
        self._epoch = int(time.time())

    # -- control --

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve; returns the base URL ("http://127.0.0.1:PORT")."""
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_post("/ari/channels/{id}/answer", self._answer)
        app.router.add_post("/ari/channels/{id}/play", self._play)
        app.router.add_get("/ari/channels/{id}", self._get_channel)
        app.router.add_get("/ari/applications/{app}", self._get_application)
        app.on_shutdown.append(self._close_clients)
        runner = web.AppRunner(app, shutdown_timeout=1.0, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Stop serving (clients see the socket close); the channels are kept."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.clients.clear()
        await self._notify()

    async def wait_client(self, timeout: float = 10.0) -> None:
        """Until a client's events socket for our app is connected."""
        await self._wait(lambda: self.listener is not None, timeout)

    async def wait_clients(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` event sockets have connected since the start (reconnects)."""
        await self._wait(lambda: self.connects >= count, timeout)

    async def call(self, number: str | None = "+15551234567") -> str:
        """A phone calls in: a new channel enters the app (StasisStart). Returns its id
        as soon as the event is sent; the client answers in its own time."""
        channel_id = f"{self._epoch}.{next(self._ids)}"
        channel = channel_json(channel_id, number)
        self.channels[channel_id] = channel
        await self.send({"type": "StasisStart", "args": [], "channel": channel})
        return channel_id

    async def answered(self, channel_id: str, timeout: float = 5.0) -> None:
        """Until the client has answered `channel_id`."""
        await self._wait(lambda: channel_id in self.answered_ids, timeout)

    async def press(self, channel_id: str, digit: str, duration_ms: int = 100) -> None:
        """The caller presses and releases a key (ARI reports it on release)."""
        channel = self.channels[channel_id]
        await self.send(
            {
                "type": "ChannelDtmfReceived",
                "digit": digit,
                "duration_ms": duration_ms,
                "channel": channel,
            }
        )

    async def hang_up(self, channel_id: str) -> None:
        """The caller hangs up: ChannelHangupRequest, StasisEnd, ChannelDestroyed."""
        channel = self.channels.pop(channel_id, None)
        if channel is None:
            return
        await self.send(
            {"type": "ChannelHangupRequest", "cause": 16, "soft": False, "channel": channel}
        )
        await self.send({"type": "StasisEnd", "channel": channel})
        gone = dict(channel, state="Down")
        await self.send(
            {
                "type": "ChannelDestroyed",
                "cause": 16,
                "cause_txt": "Normal Clearing",
                "channel": gone,
            }
        )

    async def send(self, event: dict[str, Any] | str | bytes) -> None:
        """Send an event (the common fields are added) or a raw text frame to the
        listening client; nothing when none listens."""
        ws = self.listener
        if ws is None:
            return
        if isinstance(event, dict):
            event = self._stamped(event)
        text = event.decode() if isinstance(event, bytes) else event
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(text)

    def add_channel(self, number: str | None = "+15551234567", state: str = "Up") -> str:
        """A channel in the app that no client heard of (it came while none listened,
        or Asterisk kept it over a restart); no event. Returns its id."""
        channel_id = f"{self._epoch}.{next(self._ids)}"
        self.channels[channel_id] = channel_json(channel_id, number, state)
        return channel_id

    def remove_channel(self, channel_id: str) -> None:
        """The channel ends without an event reaching any client."""
        self.channels.pop(channel_id, None)

    async def drop(self) -> None:
        """The events socket breaks (a network blip): the client must reconnect."""
        for ws in list(self.clients):
            await ws.close(code=1011, message=b"dropped")

    @property
    def listener(self) -> web.WebSocketResponse | None:
        live = [ws for ws in self.clients if not ws.closed]
        return live[-1] if live else None

    # -- server side --

    def _authorised(self, request: web.Request) -> bool:
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

    def _stamped(self, event: dict[str, Any]) -> bytes:
        """An event with the fields Asterisk adds to every one (Event/Message models)."""
        stamp = {"timestamp": timestamp(), "asterisk_id": ASTERISK_ID, "application": self.app}
        return orjson.dumps({**event, **stamp})

    def _record(self, request: web.Request) -> None:
        self.requests.append((request.method, request.path, dict(request.query)))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            self.refused += 1
            await self._notify()
            return _error(401, "Authentication required")
        if request.query.get("app") != self.app:
            return _error(400, "Invalid application provided in param [app].")
        ws = web.WebSocketResponse(protocols=("ari",))
        await ws.prepare(request)
        for old in [c for c in self.clients if not c.closed]:
            # Asterisk: "the newer WebSocket wins, and the older one receives this event".
            with contextlib.suppress(ConnectionError, RuntimeError):
                await old.send_str(self._stamped({"type": "ApplicationReplaced"}).decode())
                await old.close()
        self.clients.append(ws)
        self.connects += 1
        await self._notify()
        try:
            async for msg in ws:
                if msg.type is WSMsgType.ERROR:
                    break
        finally:
            with contextlib.suppress(ValueError):
                self.clients.remove(ws)
            await self._notify()
        return ws

    async def _rest_guard(self, request: web.Request) -> dict[str, Any] | web.Response:
        """Record the call; the channel it names, or the error to answer."""
        self._record(request)
        if not self._authorised(request):
            return _error(401, "Authentication required")
        for suffix, status in self.failures.items():
            if request.path.endswith(suffix):
                return _error(status, "Internal Server Error" if status >= 500 else "Failed")
        channel = self.channels.get(request.match_info["id"])
        if channel is None:
            return _error(404, "Channel not found")
        return channel

    async def _answer(self, request: web.Request) -> web.Response:
        channel = await self._rest_guard(request)
        if isinstance(channel, web.Response):
            return channel
        channel["state"] = "Up"
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
        await self._notify()
        return web.json_response(playback, status=201)

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = await self._rest_guard(request)
        if isinstance(channel, web.Response):
            return channel
        return web.json_response(channel)

    async def _get_application(self, request: web.Request) -> web.Response:
        self._record(request)
        if not self._authorised(request):
            return _error(401, "Authentication required")
        if request.match_info["app"] != self.app:
            return _error(404, "Application not found")
        return web.json_response(
            {
                "name": self.app,
                "channel_ids": list(self.channels),
                "bridge_ids": [],
                "endpoint_ids": [],
                "device_names": [],
            }
        )

    async def _close_clients(self, app: web.Application) -> None:
        for ws in list(self.clients):
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
