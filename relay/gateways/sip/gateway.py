"""The SIP gateway's asyncio adapter: the `[sip]` listener, the RTP port pool and the
timer loop around the pure `UserAgent` (ua.py), and the callers' events published on
the relay's hub.

It runs with the relay's app (`app.cleanup_ctx`): on the way out every call is ended
with a BYE, and the gateway waits (bounded) for their answers. `hang_up(caller)` ends
a kicked caller's calls, `end_calls` every call (the operator's command, new calls
still answered). Each call's RTP socket is read with `loop.add_reader`, one datagram
a call (the loop calls again while more wait); nothing a peer sends can
raise out of a reader: a bug of ours is logged (once a minute) and the gateway goes on.

With the relay's phone music (`phone`, ``relay/phone_feed.py``) each answered call
listens to it: every 20 ms tick the feed hands the call its frame, and once the ACK
came, and while the SDP lets us send, it goes out as one RTP packet (``rtp_out.py``)
from the call's own RTP socket (symmetric RTP) to where ``media.py`` says — the
codec's silence when the feed has nothing (no billboard, or its buffer ran dry), since
carriers end a sendrecv call whose RTP stops. A send never blocks: a full socket
buffer drops that packet (counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from ...config import RelayConfig, SipConfig, pseudonym_key
from ...contract.events import Leave, to_data
from ...edge import parse_networks
from ...phone_audio import SILENCE
from ...phone_feed import PhoneFeed
from ...ratelimit import LogOnce
from ..common import CountError, Event, Publisher, PublishFn, digit_event, join_event
from ..kicks import watch_kicks
from .message import SipError
from .register import Registration
from .rtp_out import RtpSender
from .stream import Framer
from .timers import Action, Ended, Pressed, Send, Started
from .ua import Limits, UserAgent

log = logging.getLogger("relay.sip")

SOURCE = "sip"
END_ALL_S = 2.0  # the longest shutdown waits for our BYEs' answers
MAX_CONNECTIONS = 512  # TCP connections at once (a trunk uses a few)
CONNECT_S = 5.0  # opening a TCP connection for our BYE


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, gateway: SipGateway) -> None:
        self.gateway = gateway

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.gateway.on_sip(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP "port unreachable" for a reply: the peer went away


class SipGateway:
    """Answers a carrier's SIP trunk for the relay (see the package's modules)."""

    def __init__(
        self,
        config: SipConfig,
        relay: RelayConfig,
        publish: PublishFn,
        count_error: CountError,
        *,
        phone: PhoneFeed | None = None,
    ) -> None:
        self.config = config
        self.phone = phone
        self.music: dict[str, tuple[RtpSender, Callable[[], None]]] = {}  # call → out
        self.music_counts = {"sent": 0, "dropped": 0, "failed": 0}
        self.channel = config.channel_for(relay)
        self.publish = Publisher(publish, count_error, log)
        self.networks = parse_networks(config.allow_from)
        self.free: deque[int] = deque(config.rtp_range())
        self.rtp: dict[int, tuple[socket.socket, str | None]] = {}  # port → (socket, call)
        self.ua = UserAgent(
            host=config.contact_address(),
            port=config.port,
            key=pseudonym_key(relay),
            allocate=self._allocate,
            allowed=self._allowed,
            refuse=config.refuse,
            limits=Limits(
                answer_after_s=config.answer_after_s,
                max_calls=config.max_calls,
                silence_s=config.silence_s,
                max_call_s=config.max_call_s,
                inband=config.inband_dtmf,
                music=phone is not None,
            ),
        )
        self.status = "starting"
        self.address: tuple[str, int] | None = None
        self.transports = ("udp", "tcp") if config.transport == "both" else (config.transport,)
        self.connections: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._server: asyncio.Server | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._bugs = LogOnce(every_s=60.0)
        self._connecting: set[asyncio.Task[None]] = set()
        self._armed: float | None = None  # the deadline the timer loop sleeps until

    # -- running with the relay --

    def mount(self, app: web.Application) -> None:
        app.cleanup_ctx.append(self.running)
        watch_kicks(app, self.channel, self.kicked, self.end_calls, log)

    async def kicked(self, caller_id: str, reason: str) -> None:
        """The operator kicked `caller_id` (gateways/kicks.py): their calls end."""
        self.hang_up(caller_id, reason)

    async def running(self, app: web.Application) -> AsyncIterator[None]:
        await self.start()
        yield
        await self.stop()

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        host, port = self.config.host, self.config.port
        if "udp" in self.transports:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _SipProtocol(self), local_addr=(host, port)
            )
            self._transport = transport
            port = int(transport.get_extra_info("sockname")[1])  # 0: the system's choice
        if "tcp" in self.transports:
            self._server = await asyncio.start_server(self._tcp_client, host, port)
            port = int(self._server.sockets[0].getsockname()[1])
        self.address = (host, port)
        self.ua.port = port
        self.ua.start(loop.time())
        if self.config.register_registrar:
            await self._register(port)
        self._task = loop.create_task(self._timers())
        self.status = "listening"
        log.info("SIP listening on %s %s:%d", "+".join(self.transports), host, port)

    async def _register(self, port: int) -> None:
        """Register with the carrier's registrar (resolved once, here)."""
        assert self._loop is not None
        config = self.config
        host, _, port_text = config.register_registrar.rpartition(":")
        if not host or not port_text.isdigit():
            host, port_text = config.register_registrar, "5060"
        try:
            found = await self._loop.getaddrinfo(host, int(port_text), type=socket.SOCK_DGRAM)
        except OSError as exc:
            self.status = f"listening; registrar {host} not found ({exc})"
            log.warning("SIP: registrar %s not found: %s", host, exc)
            return
        registrar = (str(found[0][4][0]), int(found[0][4][1]))
        self.ua.registration = Registration(
            timers=self.ua.timers,
            registrar=registrar,
            domain=config.register_domain or host,
            user=config.register_user,
            password=config.register_password,
            contact=f"{self.ua.host}:{port}",
            expires=config.register_expires,
        )
        self._act(self.ua.registration.start(self._loop.time()))

    async def stop(self) -> None:
        if self.ua.registration is not None and self._loop is not None:
            self._act(self.ua.registration.stop(self._loop.time()))
        await self.end_all()
        self.status = "stopped"
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for key in list(self.music):
            self._silence(key)
        for port in list(self.rtp):
            self._close_rtp(port)
        if self._transport is not None:
            self._transport.close()
        if self._server is not None:
            self._server.close()
        for writer in list(self.connections.values()):
            writer.close()

    async def end_all(self, timeout: float = END_ALL_S) -> None:
        """End every call (BYE) and refuse new ones; wait up to `timeout` seconds for
        the BYEs' answers (retransmitted meanwhile by the timer loop)."""
        if self._loop is None:
            return
        self._act(self.ua.end_all(self._loop.time()))
        deadline = self._loop.time() + timeout
        while self.ua.client and self._loop.time() < deadline:
            await asyncio.sleep(0.05)

    async def end_calls(self) -> int:
        """The operator's ``end_calls``: every call ends with our BYE (480 while it
        rings) and its caller leaves (``hangup``); unlike `end_all`, new calls are still
        answered. Returns how many calls it ended."""
        if self._loop is None:
            return 0
        keys = list(self.ua.calls)
        for key in keys:
            self._act(self.ua.hang_up(key, self._loop.time(), "hangup"))
        if keys:
            log.info("SIP: %d call(s) hung up (the operator's end_calls)", len(keys))
        return len(keys)

    def hang_up(self, caller_id: str, reason: str = "kicked") -> int:
        """End every call of `caller_id` (a pseudonym) with a BYE: the operator kicked
        them. Returns how many calls it ended."""
        if self._loop is None:
            return 0
        keys = [call.key for call in self.ua.calls.values() if call.caller == caller_id]
        for key in keys:
            self._act(self.ua.hang_up(key, self._loop.time(), "closed"))
        if keys:
            log.info("SIP: %d call(s) of %s hung up (%s)", len(keys), caller_id, reason)
        return len(keys)

    def health(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "listening": (
                f"{'+'.join(self.transports)} {self.address[0]}:{self.address[1]}"
                if self.address
                else None
            ),
            "tcp_connections": len(self.connections),
            "calls": len(self.ua.calls),
            "rtp_ports_free": len(self.free),
            "counts": dict(self.ua.counts),
            "registration": self.ua.registration.status if self.ua.registration else None,
            "music": None
            if self.phone is None
            else {"calls": len(self.music), **self.music_counts},
        }

    # -- I/O --

    def on_sip(self, data: bytes, source: tuple[str, int]) -> None:
        assert self._loop is not None
        try:
            self._act(self.ua.receive(data, source, self._loop.time()))
        except Exception:
            self._bug("SIP message")

    # -- TCP (RFC 3261 §18.3) --

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        await self._stream(reader, writer, (str(peer[0]), int(peer[1])))

    async def _stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: tuple[str, int]
    ) -> None:
        """Read one connection's messages until it closes, idles `tcp_idle_s` or breaks
        a cap (logged once a minute); answers go back on it (`connections`)."""
        assert self._loop is not None
        if len(self.connections) >= MAX_CONNECTIONS or not self.ua.allowed(peer[0]):
            self.ua.counts["tcp_refused"] += 1
            writer.close()
            return
        self.connections[peer] = writer
        framer = Framer()
        try:
            while True:
                async with asyncio.timeout(self.config.tcp_idle_s):
                    data = await reader.read(65536)
                if not data:
                    break
                for message in framer.feed(data):
                    self._act(self.ua.receive(message, peer, self._loop.time(), "TCP"))
                if framer.pings:
                    writer.write(b"\r\n" * framer.pings)  # RFC 5626 §3.5.1: pong
                    framer.pings = 0
        except SipError as exc:
            self.ua.counts[exc.code] += 1
            if self._bugs.allow(("tcp", exc.code), self._loop.time()):
                log.warning("SIP over TCP from %s closed: %s", peer[0], exc.message)
        except (TimeoutError, ConnectionError, OSError):
            pass  # idle, or gone
        except Exception:
            self._bug("SIP stream")
        finally:
            if self.connections.get(peer) is writer:
                del self.connections[peer]
            writer.close()

    def _send_stream(self, action: Send) -> None:
        writer = self.connections.get(action.to)
        if writer is not None and not writer.is_closing():
            writer.write(action.data)
            return
        assert self._loop is not None
        task = self._loop.create_task(self._connect_and_send(action))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect_and_send(self, action: Send) -> None:
        """Our request to a peer with no open connection: open one (bounded), send,
        and read the answers on it."""
        try:
            async with asyncio.timeout(CONNECT_S):
                reader, writer = await asyncio.open_connection(*action.to)
        except (TimeoutError, OSError):
            return  # the client transaction's timer F gives up
        writer.write(action.data)
        await self._stream(reader, writer, action.to)

    def _read_rtp(self, port: int) -> None:
        assert self._loop is not None
        entry = self.rtp.get(port)
        if entry is None:
            return
        sock, key = entry
        try:
            data, addr = sock.recvfrom(2048)
        except OSError:
            return  # nothing after all, or an ICMP error queued on the socket
        if key is None:
            return  # not answered yet: early media is not played
        try:
            self._act(self.ua.rtp(key, data, (str(addr[0]), int(addr[1])), self._loop.time()))
        except Exception:
            self._bug("RTP packet")

    async def _timers(self) -> None:
        """Sleep until the user agent's next deadline (or new work), fire what is due.
        Supervised: a bug is logged and the loop goes on."""
        assert self._loop is not None and self._wake is not None
        while True:
            deadline = self._armed = self.ua.next_deadline()
            self._wake.clear()
            # Not asyncio.wait_for: on 3.11 it can swallow a cancel that meets a wake-up.
            alarm = None if deadline is None else self._loop.call_at(deadline, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                if alarm is not None:
                    alarm.cancel()
            try:
                self._act(self.ua.poll(self._loop.time()))
            except Exception:
                self._bug("SIP timer")

    def _act(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send) and action.transport != "UDP":
                self._send_stream(action)
            elif isinstance(action, Send):
                if self._transport is not None and not self._transport.is_closing():
                    self._transport.sendto(action.data, action.to)
            elif isinstance(action, Pressed):
                self.publish(digit_event(self.channel, action.caller, action.digit, SOURCE))
            elif isinstance(action, Started):
                sock, _ = self.rtp[action.rtp_port]
                self.rtp[action.rtp_port] = (sock, action.key)
                log.info("SIP call %s: caller %s joins", action.key, action.caller)
                self.publish(join_event(self.channel, action.caller, SOURCE, action.display))
                self._listen(action)
            elif isinstance(action, Ended):
                self._silence(action.key)
                self._close_rtp(action.rtp_port)
                self.free.append(action.rtp_port)
                if action.started:
                    log.info("SIP call %s ended (%s)", action.key, action.reason)
                    leave = Leave(action.caller, action.reason)
                    self.publish(Event(self.channel, to_data(leave)))
        # The timer loop sleeps until its deadline: woken only when one came earlier.
        deadline = self.ua.next_deadline()
        armed = self._armed
        if self._wake is not None and deadline is not None and (armed is None or deadline < armed):
            self._wake.set()

    # -- the phone music out --

    def _listen(self, started: Started) -> None:
        if self.phone is None or started.key in self.music:
            return
        key = started.key
        stop = self.phone.listen(started.caller, lambda frame: self._play(key, frame))
        self.music[key] = (RtpSender(), stop)

    def _silence(self, key: str) -> None:
        entry = self.music.pop(key, None)
        if entry is not None:
            entry[1]()

    def _play(self, key: str, frame: bytes | None) -> None:
        """One tick of the music for call `key` (on the loop, from the phone feed's
        pacer): its packet sent, or the stream's clock moved on."""
        entry, call = self.music.get(key), self.ua.calls.get(key)
        if entry is None or call is None:
            return
        sender = entry[0]
        to = call.media.destination() if call.state == "confirmed" else None
        held = self.rtp.get(call.rtp_port)
        if to is None or held is None:
            sender.skip()
            return
        sender.payload_type, sender.alaw = call.media.codec, call.media.alaw
        # Nothing to play (no billboard yet, or its feed ran dry): silence, not a gap —
        # carriers and SBCs hang up a sendrecv call whose RTP stops (RTP timeouts).
        packet = sender.packet(SILENCE if frame is None else frame)
        if packet is None:
            return
        try:
            held[0].sendto(packet, to)
        except (BlockingIOError, InterruptedError):
            self.music_counts["dropped"] += 1  # the socket's buffer is full: never wait
            return
        except OSError as exc:
            self.music_counts["failed"] += 1
            if self._loop is not None and self._bugs.allow("rtp out", self._loop.time()):
                log.warning("SIP: RTP to a caller not sent: %s (logged once a minute)", exc)
            return
        self.music_counts["sent"] += 1

    def _allocate(self) -> int | None:
        """A free RTP port, bound now (a port another program holds is skipped)."""
        assert self._loop is not None
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        for _ in range(len(self.free)):
            port = self.free.popleft()
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind((self.config.host, port))
            except OSError:
                sock.close()
                self.free.append(port)
                continue
            self.rtp[port] = (sock, None)
            self._loop.add_reader(sock.fileno(), self._read_rtp, port)
            return port
        return None

    def _close_rtp(self, port: int) -> None:
        entry = self.rtp.pop(port, None)
        if entry is not None and self._loop is not None:
            self._loop.remove_reader(entry[0].fileno())
            entry[0].close()

    def _allowed(self, address: str) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def _bug(self, what: str) -> None:
        if self._loop is not None and self._bugs.allow(what, self._loop.time()):
            log.exception("SIP gateway: a bug handling a %s (logged once a minute)", what)
