"""The fake Asterisk's media side (`relay/rehearsal/fake_ari.py` mounts it): ARI's
external media channels and bridges, and a UDP socket per external channel that stands
for Asterisk's RTP and records what it receives.

As Asterisk master does it (``rest-api/api-docs/channels.json``, ``bridges.json``;
``res/ari/resource_channels.c``, ``resource_bridges.c``, ``channels/chan_rtp.c``):

- ``POST /ari/channels/externalMedia?app&external_host&format[&encapsulation=rtp]
  [&transport=udp][&direction][&channelId]`` — the checks in their order, each a 400
  with Asterisk's message (app, the encapsulation/transport pairs, external_host as
  ``host:port``, format, direction in both/in/out; an id over 149 characters); a
  transport other than rtp/udp is 501 here (the fake has no AudioSocket or
  WebSocket); a taken ``channelId`` is 409. Then 200 with the ``Channel`` (state
  "Down", named ``UnicastRTP/HOST:PORT-0x…``) plus ``channelvars``
  ``{UNICASTRTP_LOCAL_ADDRESS, UNICASTRTP_LOCAL_PORT}``: where its RTP socket is. The
  channel then answers and enters the app (the dial thread): ``ChannelStateChange``
  (Up), then ``StasisStart {args: [], channel}`` — sent after the REST answer, as the
  events of Asterisk's threads may be, or `enter_after_s` later (a slow dial thread).
- ``POST /ari/bridges?type&bridgeId&name`` — 200 with the ``Bridge`` ``{id,
  technology, bridge_type, bridge_class, creator, name, channels, creationtime,
  video_mode}``; 409 for a taken id. ``GET /ari/bridges``, ``GET /ari/bridges/{id}``.
- ``POST /ari/bridges/{id}/addChannel?channel=ID[,ID][&mute][&absorbDTMF][&role]`` —
  404 "Bridge not found"; 400 "Missing parameter channel" or "Channel not found"; 422
  "Channel not in Stasis application" for a channel that exists but has not entered
  the app (an external channel before its StasisStart); else 204 and
  ``ChannelEnteredBridge {bridge, channel}`` (a channel in another bridge moves).
- ``DELETE /ari/channels/{id}`` also hangs up an external channel that has not entered
  the app yet (no StasisStart or StasisEnd for it then).
- ``DELETE /ari/bridges/{id}`` — 204, its channels leave it (``ChannelLeftBridge``),
  ``BridgeDestroyed``; 404 "Bridge not found".
- A channel that ends leaves its bridge first (``ChannelLeftBridge``, then its
  ``StasisEnd``); an external channel's RTP socket closes with it. A bridge outlives
  its channels until it is deleted (as an ARI bridge does).

The RTP socket records every datagram (`Recorder.packets`: arrival time, bytes,
source). It sends nothing back: the relay mutes the caller in the bridge, so Asterisk
has no audio to send it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

if TYPE_CHECKING:
    from .fake_ari import FakeAri

MAX_ID = 149  # AST_MAX_PUBLIC_UNIQUEID
FORMATS = frozenset({"ulaw", "alaw", "slin", "slin16", "g722", "gsm", "opus"})
BRIDGE_TYPES = frozenset(
    {"mixing", "holding", "dtmf_events", "proxy_media", "video_sfu", "video_single", "sdp_label"}
)


class Recorder(asyncio.DatagramProtocol):
    """Asterisk's RTP socket of one external channel: what arrives, when (the loop's
    clock), from where."""

    def __init__(self) -> None:
        self.packets: list[tuple[float, bytes, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not one

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        at = asyncio.get_running_loop().time()
        self.packets.append((at, data, (str(addr[0]), int(addr[1]))))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class External:
    """An external media channel: where Asterisk sends its RTP (`external_host`), and
    its own RTP socket."""

    channel: dict[str, Any]
    external_host: str
    format: str
    recorder: Recorder


@dataclass
class Bridge:
    json: dict[str, Any]
    # Each channel in it, and the options it was added with (mute, absorbDTMF, role).
    members: dict[str, dict[str, str]] = field(default_factory=dict)


class FakeMedia:
    """External media channels and bridges of one `FakeAri` (see the docstring)."""

    def __init__(self, fake: FakeAri, stamp: Callable[[], str]) -> None:
        self.fake = fake
        self._stamp = stamp  # Asterisk's time format (fake_ari.timestamp)
        self.externals: dict[str, External] = {}  # every one made, by channel id
        self.bridges: dict[str, Bridge] = {}
        self._pointers = itertools.count(0x7F3C28001A40, 0x1F0)
        # How long a new external channel takes to enter the app (Asterisk's dial thread
        # on a busy machine); until then, addChannel answers 422.
        self.enter_after_s = 0.0

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/ari/channels/externalMedia", self._external_media)
        app.router.add_get("/ari/bridges", self._list_bridges)
        app.router.add_post("/ari/bridges", self._create_bridge)
        app.router.add_get("/ari/bridges/{id}", self._get_bridge)
        app.router.add_delete("/ari/bridges/{id}", self._destroy_bridge)
        app.router.add_post("/ari/bridges/{id}/addChannel", self._add_channel)

    # -- what the tests ask --

    def heard_by(self, channel_id: str) -> Recorder | None:
        """The RTP socket of the external channel in `channel_id`'s bridge, if any."""
        for bridge in self.bridges.values():
            if channel_id in bridge.members:
                for other in bridge.members:
                    if other in self.externals:
                        return self.externals[other].recorder
        return None

    def bridge_of(self, channel_id: str) -> Bridge | None:
        return next((b for b in self.bridges.values() if channel_id in b.members), None)

    def bridge_ids(self) -> list[str]:
        """The bridges the app hears: those with a channel of the app in them."""
        return [i for i, b in self.bridges.items() if set(b.members) & set(self.fake.channels)]

    # -- the fake's other parts call these --

    def leave(self, channel_id: str) -> list[dict[str, Any]]:
        """`channel_id` ends: the events of its leaving its bridge; its RTP closes."""
        external = self.externals.get(channel_id)
        if external is not None:
            external.recorder.close()
        bridge = self.bridge_of(channel_id)
        if bridge is None:
            return []
        return [self._left(bridge, channel_id)]

    def close(self) -> None:
        for external in self.externals.values():
            external.recorder.close()
        self.externals.clear()
        self.bridges.clear()

    # -- server side --

    def _refused(self, request: web.Request) -> web.Response | None:
        self.fake.record(request)
        if not self.fake.authorised(request):
            return _error(401, "Authentication required")
        for suffix, status in self.fake.failures.items():
            if request.path.endswith(suffix):
                return _error(status, "Internal Server Error" if status >= 500 else "Failed")
        return None

    async def _external_media(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        q = request.query
        if not q.get("app"):
            return _error(400, "app cannot be empty")
        transport = q.get("transport") or "udp"
        encapsulation = q.get("encapsulation") or "rtp"
        if transport == "websocket" and encapsulation != "none":
            return _error(400, "encapsulation must be 'none' for websocket transport")
        if encapsulation == "rtp" and transport != "udp":
            return _error(400, "transport must be 'udp' for rtp encapsulation")
        if encapsulation == "audiosocket" and transport != "tcp":
            return _error(400, "transport must be 'tcp' for audiosocket encapsulation")
        host = q.get("external_host", "")
        if not host:
            return _error(400, "external_host is required for all but websocket server connections")
        if not _host_port(host):
            return _error(
                400, "external_host must be <host>:<port> for all transports other than websocket"
            )
        fmt = q.get("format", "")
        if not fmt:
            return _error(400, "format cannot be empty")
        if q.get("direction", "both") not in ("both", "in", "out"):
            return _error(400, "Invalid direction specified")
        if (encapsulation, transport) != ("rtp", "udp"):
            return _error(501, "The encapsulation and/or transport is not supported")
        channel_id = q.get("channelId") or self.fake.new_id()
        if len(channel_id) > MAX_ID:
            return _error(400, f"Uniqueid length exceeds maximum of {MAX_ID}")
        if channel_id in self.fake.channels or channel_id in self.externals:
            return _error(409, "Channel with given unique ID already exists")
        if fmt not in FORMATS:
            return _error(500, "Allocation failed")
        recorder = Recorder()
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: recorder, local_addr=("127.0.0.1", 0))
        channel = _external_channel(channel_id, host, next(self._pointers), self._stamp())
        self.externals[channel_id] = External(channel, host, fmt, recorder)
        up = {**channel, "state": "Up"}
        self.fake.later(
            {"type": "ChannelStateChange", "channel": up},
            {"type": "StasisStart", "args": [], "channel": up},
            before=lambda: self._entered(channel_id, up),
            after_s=self.enter_after_s,
        )
        port = str(recorder.port)
        channelvars = {"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": port}
        return web.json_response({**channel, "channelvars": channelvars})

    def _entered(self, channel_id: str, channel: dict[str, Any]) -> bool:
        """The dial thread answered it and ran Stasis(app): it is in the app now, unless
        it was hung up before (then no event says it entered)."""
        if self.pending(channel_id) is None:
            return False
        self.fake.channels[channel_id] = channel
        return True

    def pending(self, channel_id: str) -> dict[str, Any] | None:
        """An external channel made and not hung up that has not entered the app yet."""
        external = self.externals.get(channel_id)
        transport = None if external is None else external.recorder.transport
        if channel_id in self.fake.channels or transport is None or transport.is_closing():
            return None
        return external.channel if external is not None else None

    async def _create_bridge(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        bridge_id = request.query.get("bridgeId") or f"{self.fake.new_id()}-bridge"
        if bridge_id in self.bridges:
            return _error(409, f"Bridge with id '{bridge_id}' already exists")
        kinds = request.query.get("type", "mixing").split(",")
        if not all(k.strip() in BRIDGE_TYPES for k in kinds):
            why = f"Unable to create bridge. Possible duplicate bridge id '{bridge_id}'"
            return _error(500, why)
        bridge: dict[str, Any] = {
            "id": bridge_id,
            "technology": "simple_bridge",
            "bridge_type": "holding" if "holding" in kinds else "mixing",
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": request.query.get("name", ""),
            "channels": [],
            "creationtime": self._stamp(),
            "video_mode": "none",
        }
        self.bridges[bridge_id] = Bridge(bridge)
        return web.json_response(bridge)

    async def _list_bridges(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        return web.json_response([self._json(b) for b in self.bridges.values()])

    async def _get_bridge(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        bridge = self.bridges.get(request.match_info["id"])
        if bridge is None:
            return _error(404, "Bridge not found")
        return web.json_response(self._json(bridge))

    async def _add_channel(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        bridge = self.bridges.get(request.match_info["id"])
        if bridge is None:
            return _error(404, "Bridge not found")
        ids = [i for i in request.query.get("channel", "").split(",") if i]
        if not ids:
            return _error(400, "Missing parameter channel")
        for channel_id in ids:
            if channel_id not in self.fake.channels:
                if channel_id in self.externals:  # made, not yet in the app
                    return _error(422, "Channel not in Stasis application")
                return _error(400, "Channel not found")
        options = {k: v for k, v in request.query.items() if k in ("mute", "absorbDTMF", "role")}
        events: list[dict[str, Any]] = []
        for channel_id in ids:
            before = self.bridge_of(channel_id)
            if before is bridge:
                continue
            if before is not None:
                events.append(self._left(before, channel_id))
            bridge.members[channel_id] = options
            channel = self.fake.channels[channel_id]
            events.append(
                {"type": "ChannelEnteredBridge", "bridge": self._json(bridge), "channel": channel}
            )
        self.fake.later(*events)
        return web.Response(status=204)

    async def _destroy_bridge(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        bridge = self.bridges.get(request.match_info["id"])
        if bridge is None:
            return _error(404, "Bridge not found")
        events = [self._left(bridge, channel_id) for channel_id in list(bridge.members)]
        del self.bridges[bridge.json["id"]]
        self.fake.later(*events, {"type": "BridgeDestroyed", "bridge": self._json(bridge)})
        return web.Response(status=204)

    def _left(self, bridge: Bridge, channel_id: str) -> dict[str, Any]:
        del bridge.members[channel_id]
        channel = self.fake.channels.get(channel_id) or {"id": channel_id}
        return {"type": "ChannelLeftBridge", "bridge": self._json(bridge), "channel": channel}

    @staticmethod
    def _json(bridge: Bridge) -> dict[str, Any]:
        return {**bridge.json, "channels": list(bridge.members)}


def _external_channel(channel_id: str, host: str, pointer: int, created: str) -> dict[str, Any]:
    """A new UnicastRTP channel's ``Channel`` (chan_rtp.c names it by its destination
    and its RTP instance's address)."""
    return {
        "id": channel_id,
        "protocol_id": "",
        "name": f"UnicastRTP/{host}-0x{pointer:x}",
        "state": "Down",
        "caller": {"name": "", "number": ""},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "default",
            "exten": "s",
            "priority": 1,
            "app_name": "",
            "app_data": "",
        },
        "creationtime": created,
        "language": "en",
    }


def _host_port(value: str) -> bool:
    """Asterisk's ast_sockaddr_split_hostport with PARSE_PORT_REQUIRE, roughly."""
    host, sep, port = value.rpartition(":")
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
    return bool(host and sep and port.isdigit() and 0 < int(port) < 65536)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)
