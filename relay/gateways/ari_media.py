"""The music down an Asterisk caller's line (issue 16): each joined caller is put in a
mixing bridge with an ARI external media channel, and the relay sends that channel
the caller's phone mix as RTP (``relay/phone_feed.py`` paces it, one 20 ms μ-law frame
a tick).

Why external media over RTP/UDP, a bridge, and these options — from what real Asterisk
offers (its ``rest-api/api-docs/channels.json`` and ``bridges.json``,
``res/ari/resource_channels.c``, ``channels/chan_rtp.c``):

- ``POST /channels/externalMedia`` with ``encapsulation=rtp``, ``transport=udp``
  (chan_rtp's ``UnicastRTP``) is in every Asterisk since 16.6 and needs nothing in
  its configuration; AudioSocket needs its module and a TCP server, and the
  WebSocket transport only the newest releases. ``format=ulaw`` is what the phone mix
  is and what most trunks carry (no transcoding). ``direction=both``: the only value
  the schema allows (chan_rtp ignores it). We give the ``channelId``
  (``{app}-music-{token}``), so that the channel's own ``StasisStart`` — Asterisk puts
  it in the app, and it may come before the REST answer — is known as ours at once
  (``AriCalls.media_ids``); any ``UnicastRTP/`` channel is never taken for a caller.
- The answer's ``channelvars`` say where Asterisk's RTP socket is
  (``UNICASTRTP_LOCAL_ADDRESS``, ``UNICASTRTP_LOCAL_PORT``). We send there from the
  very socket we named as ``external_host``, so Asterisk's strict RTP (which learns
  the source it accepts) and any NAT see one peer.
- ``POST /bridges?type=mixing`` with our ``bridgeId`` (the same token), then
  ``addChannel``: the caller with ``mute=true`` (the relay has no use for the caller's
  voice: it stays in Asterisk) and ``absorbDTMF=true`` (keys stay out of the bridge;
  ``ChannelDtmfReceived`` still comes, as before), and the external channel once it
  has entered the app (``addChannel`` answers 422 before that), waited for at most
  `ENTER_WAIT_S`. A snoop channel would need a bridge to the external channel too.
- The caller's prompt (``play``) is a command on their channel: Asterisk runs it
  before ``addChannel``, so the prompt is heard first, then the music. A prompt
  longer than the REST timeout (5 s) holds the caller's ``addChannel`` answer past it:
  no answer is taken as "queued", and the music is bridged all the same.

Teardown, when the caller leaves (hang-up, kick, end_calls, a relay that stops, lost
or replaced): the RTP stops, then ``DELETE /channels/{external}`` and ``DELETE
/bridges/{id}`` (Asterisk keeps an ARI bridge until it is deleted, even empty). What a
failed teardown leaves (Asterisk unreachable then) is cleaned after the next connect:
the resync finds our old external channels in the app (``UnicastRTP/`` channels that
are not ours now) and DELETEs them, and ``GET /bridges`` lists the bridges whose id
has our app's prefix, which are DELETEd unless in use. Two relays with the same app
name would clean each other's: give each its own (as ARI already asks).

A call whose music cannot start (Asterisk refuses, the socket cannot be bound) goes
on without it: counted (``ari_media_KIND``), said once per kind, and not retried for
that call.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlsplit

from ..phone_feed import PhoneFeed
from ..ratelimit import LogOnce
from .ari_core import AriCall
from .ari_rest import AriRest
from .common import CountError
from .sip.rtp_out import PCMU, RtpSender

log = logging.getLogger("relay.ari")

# The external channel's StasisStart is awaited this long before addChannel is tried.
ENTER_WAIT_S: Final = 5.0
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]
TOKEN_BYTES: Final = 6


def rtp_destination(body: Any, fallback: str) -> tuple[str, int] | None:
    """Where Asterisk takes the call's RTP, from the externalMedia answer's
    ``channelvars`` (any JSON: None when they are missing or wrong). An unspecified
    address (0.0.0.0, ::) means Asterisk's own: `fallback`."""
    if not isinstance(body, dict) or not isinstance(body.get("channelvars"), dict):
        return None
    found = body["channelvars"]
    address, port = found.get("UNICASTRTP_LOCAL_ADDRESS"), found.get("UNICASTRTP_LOCAL_PORT")
    if not isinstance(address, str) or not isinstance(port, str) or not port.isdigit():
        return None
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None
    if not 0 < int(port) < 65536:
        return None
    return (fallback if ip.is_unspecified else str(ip)), int(port)


def host_port(host: str, port: int) -> str:
    """``host:port`` as Asterisk parses it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def route_towards(host: str, port: int) -> tuple[str, str]:
    """(the address this machine reaches `host` from, `host`'s address): a connected
    UDP socket asks the routing table; no packet is sent."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(address)
        return str(probe.getsockname()[0]), str(address[0])


class _Inbound(asyncio.DatagramProtocol):
    """What Asterisk sends us (nothing while the caller is muted): counted, dropped."""

    def __init__(self, music: _Music, errors: Callable[[Exception], None]) -> None:
        self.music = music
        self.errors = errors

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.music.received += 1

    def error_received(self, exc: Exception) -> None:
        self.errors(exc)


@dataclass(eq=False)
class _Music:
    """One caller's music: their channel, our external channel and bridge, the socket."""

    call: AriCall
    media_id: str
    bridge_id: str
    rtp: RtpSender
    transport: asyncio.DatagramTransport | None = None
    remote: tuple[str, int] | None = None
    stop_listening: Callable[[], None] | None = None
    made_channel: bool = False  # (or maybe: the answer did not come)
    made_bridge: bool = False
    deleted_channel: bool = False
    deleted_bridge: bool = False
    added: bool = False  # the external channel is in the bridge
    starting: bool = True
    ended: bool = False
    task: asyncio.Task[None] | None = None
    received: int = 0
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    def play(self, frame: bytes | None) -> None:
        """One tick of the phone feed (on the loop): send, never wait. Nothing to play:
        nothing sent (the bridge gives the caller silence; UnicastRTP has no RTP
        timeout), the stream's clock moves on."""
        transport = self.transport
        if transport is None or self.remote is None or transport.is_closing():
            self.rtp.skip()
            return
        packet = self.rtp.packet(frame)
        if packet is not None:
            transport.sendto(packet, self.remote)


class AriMusic:
    """The phone music of an ARI gateway's callers (see the module's docstring).
    `sync(joined)` after every change of the callers; `entered` for `MediaEntered`."""

    def __init__(
        self,
        rest: AriRest,
        app: str,
        phone: PhoneFeed,
        media_ids: set[str],
        count_error: CountError,
        spawn: Spawn,
        media_host: str = "",
    ) -> None:
        self.rest = rest
        self.app = app
        self.phone = phone
        self.media_ids = media_ids  # the core's: what is ours is never a caller
        self.prefix = f"{app}-music-"
        self._count_error = count_error
        self._media_host = media_host
        self._route: tuple[str, str] | None = None  # (our address, Asterisk's)
        self._musics: dict[str, _Music] = {}  # by the caller's channel id
        self._by_media: dict[str, _Music] = {}
        self._spawn = spawn  # the gateway's: its tasks are supervised and cancelled with it
        self._logged = LogOnce(every_s=600.0)
        self.started = 0
        self.failed = 0
        self.cleaned = 0
        self._packets_before = 0  # sent to calls that have ended

    # -- the gateway's side --

    def sync(self, joined: Mapping[str, AriCall]) -> None:
        """Music for every joined caller, none for anyone else."""
        for channel_id, call in joined.items():
            if channel_id not in self._musics:
                self._musics[channel_id] = music = self._new(call)
                music.task = self._spawn(self._run(music))
        for channel_id in [i for i in self._musics if i not in joined]:
            music = self._musics.pop(channel_id)
            music.ended = True
            if not music.starting:
                self._spawn(self._teardown(music))

    def entered(self, channel_id: str) -> None:
        """An external media channel entered the app: ours goes in its bridge; one we
        do not know is left over from before (a teardown that failed) and is hung up."""
        music = self._by_media.get(channel_id)
        if music is not None:
            music.entered.set()
        elif channel_id not in self.media_ids:
            self.cleaned += 1
            log.info("hanging up a leftover external media channel")
            self._spawn(self._delete("channels", channel_id))

    async def clean_bridges(self) -> None:
        """After a (re)connect: delete the bridges of ours that no caller uses."""
        status, body = await self.rest("GET", "/bridges")
        if status != 200 or not isinstance(body, list):
            return
        live = {m.bridge_id for m in self._by_media.values()}
        stale = [
            b["id"]
            for b in body
            if isinstance(b, dict)
            and isinstance(b.get("id"), str)
            and b["id"].startswith(self.prefix)
            and b["id"] not in live
        ]
        await asyncio.gather(*(self._delete("bridges", i) for i in stale))
        if stale:
            self.cleaned += len(stale)
            log.info("deleted %d leftover music bridge(s)", len(stale))

    async def stop_all(self) -> None:
        """The relay stops: every caller's music ends (the caller bounds the wait)."""
        musics = list(self._by_media.values())
        self._musics.clear()
        for music in musics:
            music.ended = True
            music.entered.set()
        # One still starting tears itself down when its request under way comes back.
        await asyncio.gather(
            *(m.task if m.starting and m.task else self._teardown(m) for m in musics)
        )

    def close(self) -> None:
        """The gateway's tasks are over: no socket stays open."""
        for music in list(self._by_media.values()):
            self._silence(music)

    def health(self) -> dict[str, Any]:
        playing = [m for m in self._musics.values() if m.added and not m.ended]
        return {
            "calls": len(playing),
            "started": self.started,
            "failed_to_start": self.failed,
            "cleaned": self.cleaned,
            "sent": self._packets_before + sum(m.rtp.sent for m in self._by_media.values()),
        }

    # -- one caller's music --

    def _new(self, call: AriCall) -> _Music:
        token = secrets.token_hex(TOKEN_BYTES)
        music = _Music(call, self.prefix + token, self.prefix + token, RtpSender(PCMU))
        self._by_media[music.media_id] = music
        self.media_ids.add(music.media_id)  # before Asterisk can say it entered
        return music

    async def _run(self, music: _Music) -> None:
        try:
            await self._start(music)
        except OSError as exc:
            self._fail(
                music,
                "bind",
                f"cannot open the RTP socket for the phone music ({exc.strerror or exc}): set "
                "[ari] media_host to an address of this machine that Asterisk can reach",
            )
        finally:
            music.starting = False
            if music.ended:
                await self._teardown(music)

    async def _start(self, music: _Music) -> None:
        ours, asterisk = await self._where()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Inbound(music, self._socket_error), local_addr=(ours, 0)
        )
        music.transport = transport
        if music.ended:
            return
        port = transport.get_extra_info("sockname")[1]
        params = {
            "app": self.app,
            "external_host": host_port(ours, port),
            "format": "ulaw",
            "encapsulation": "rtp",
            "transport": "udp",
            "direction": "both",
            "channelId": music.media_id,
        }
        status, body = await self.rest("POST", "/channels/externalMedia", params)
        music.made_channel = status is None or 200 <= status < 300  # None: maybe
        if music.ended:
            return
        if status != 200:
            self._fail(music, "refused", f"Asterisk refused external media (HTTP {status})")
            return
        music.remote = rtp_destination(body, asterisk)
        if music.remote is None:
            self._fail(music, "channelvars", "external media without UNICASTRTP_LOCAL_*")
            return
        music.stop_listening = self.phone.listen(music.call.caller, music.play)
        bridge = {"type": "mixing", "bridgeId": music.bridge_id, "name": f"{self.app} music"}
        status, _ = await self.rest("POST", "/bridges", bridge)
        music.made_bridge = status is None or 200 <= status < 300
        if music.ended:
            return
        if status != 200:
            self._fail(music, "bridge", f"Asterisk would not make a bridge (HTTP {status})")
            return
        path = f"/bridges/{quote(music.bridge_id, safe='')}/addChannel"
        caller = {"channel": music.call.channel_id, "mute": "true", "absorbDTMF": "true"}
        status, _ = await self.rest("POST", path, caller)
        if music.ended:
            return
        if status not in (204, None):  # None: no answer yet (their prompt still plays)
            self._fail(music, "add_caller", f"the caller could not join the bridge ({status})")
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ENTER_WAIT_S):
                await music.entered.wait()
        if music.ended:
            return
        status, _ = await self.rest("POST", path, {"channel": music.media_id})
        if music.ended:
            return
        if status != 204:
            self._fail(music, "add_media", f"the music could not join the bridge ({status})")
            return
        music.added = True
        self.started += 1
        log.info("caller %s hears the music", music.call.caller)

    async def _teardown(self, music: _Music) -> None:
        """Stop the RTP, delete the external channel and the bridge (each once); when
        the start is over too, forget them."""
        self._silence(music)
        music.entered.set()  # a start waiting for the channel: wake it, it ends
        jobs = []
        if music.made_channel and not music.deleted_channel:
            music.deleted_channel = True
            jobs.append(self._delete("channels", music.media_id))
        if music.made_bridge and not music.deleted_bridge:
            music.deleted_bridge = True
            jobs.append(self._delete("bridges", music.bridge_id))
        await asyncio.gather(*jobs)
        if not music.starting and self._by_media.pop(music.media_id, None) is not None:
            self._packets_before += music.rtp.sent
            self.media_ids.discard(music.media_id)

    def _silence(self, music: _Music) -> None:
        if music.stop_listening is not None:
            music.stop_listening()
            music.stop_listening = None
        if music.transport is not None:
            music.transport.close()

    async def _delete(self, kind: str, ident: str) -> None:
        await self.rest("DELETE", f"/{kind}/{quote(ident, safe='')}")

    async def _where(self) -> tuple[str, str]:
        """(the address we bind and Asterisk sends to, Asterisk's address)."""
        if self._route is None:
            url = urlsplit(self.rest.base)
            route = await route_towards(url.hostname or "127.0.0.1", url.port or 8088)
            self._route = (self._media_host or route[0], route[1])
            log.info(
                "phone music: each call's RTP goes from %s to Asterisk (%s)",
                self._route[0],
                "[ari] media_host" if self._media_host else "the address we reach it from",
            )
        return self._route

    def _fail(self, music: _Music, kind: str, message: str) -> None:
        """This call goes on without music: said once per kind, then torn down."""
        self.failed += 1
        self._count_error(f"ari_media_{kind}")
        self._logged.log(log, logging.WARNING, kind, "%s; the caller hears no music", message)
        music.ended = True

    def _socket_error(self, exc: Exception) -> None:
        self._count_error("ari_media_socket")
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        self._logged.log(log, logging.INFO, "socket", "the phone music's RTP: %s", why)


__all__ = ["ENTER_WAIT_S", "AriMusic", "host_port", "route_towards", "rtp_destination"]
