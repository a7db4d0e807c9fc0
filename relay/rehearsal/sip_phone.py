"""Rehearsal phones that call a SIP gateway over UDP, as a carrier's trunk would: for
the crowd's ``--via sip`` and bench/sip_calls.py.

`SipPhones` owns one SIP socket for all its calls; `SipPhones.call` sends an INVITE
with a PCMU + telephone-event offer (sent again at T1 doubling, RFC 3261 §17.1.1.2)
and ACKs the 200; each `SipCall` has an RTP socket of its own and sends keys as
RFC 4733 events (`press`), or audio (`send_audio`); `hang_up` sends the BYE (sent
again until answered). A BYE from the gateway is answered 200 and ends the call
(`ended`). The phones build and read messages with the gateway's own writer and
parser: SIPp is the independent peer of the tests (tests/relay/gateways/sipp.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import struct
from typing import Any

from ..gateways.sip import sdp
from ..gateways.sip.message import Message, SipError, name_addr, parse, render, response, tag_of

T1 = 0.5
ANSWER_TIMEOUT_S = 10.0
EVENT_PT = 101  # what we offer for telephone-event; the answer may say otherwise


class CallFailed(Exception):
    """The gateway refused the call (a status) or never answered."""


class SipCall:
    def __init__(self, phones: SipPhones, number: str) -> None:
        self.phones = phones
        self.number = number
        self.call_id = secrets.token_hex(8) + "@rehearsal"
        self.tag = secrets.token_hex(4)
        self.remote_tag = ""
        self.target = ""  # the gateway's Contact
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((phones.host, 0))
        self.rtp.setblocking(False)
        self.rtp_to: tuple[str, int] | None = None
        self.events_pt = EVENT_PT
        self.ssrc = secrets.randbits(32)
        self.sequence = secrets.randbits(16)
        self.timestamp = secrets.randbits(32)
        self.ended = asyncio.Event()
        self.cseq = 1

    @property
    def port(self) -> int:
        return int(self.rtp.getsockname()[1])

    def headers(self, method: str, cseq: int, branch: str) -> list[tuple[str, str]]:
        host, port = self.phones.host, self.phones.port
        to = f"<sip:jam@{self.phones.target[0]}>" + (
            f";tag={self.remote_tag}" if self.remote_tag else ""
        )
        return [
            ("Via", f"SIP/2.0/UDP {host}:{port};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{self.number}@{host}>;tag={self.tag}"),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:phone@{host}:{port}>"),
        ]

    def offer(self) -> bytes:
        host = self.phones.host
        return (
            f"v=0\r\no=phone 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {self.port} RTP/AVP 0 {EVENT_PT}\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:{EVENT_PT} telephone-event/8000\r\na=fmtp:{EVENT_PT} 0-15\r\n"
        ).encode()

    def _packet(self, payload_type: int, payload: bytes, marker: bool, timestamp: int) -> None:
        self.sequence = (self.sequence + 1) & 0xFFFF
        head = struct.pack(
            "!BBHII", 0x80, payload_type | (0x80 if marker else 0), self.sequence,
            timestamp & 0xFFFFFFFF, self.ssrc,
        )  # fmt: skip
        if self.rtp_to is not None:
            with contextlib.suppress(OSError):
                self.rtp.sendto(head + payload, self.rtp_to)

    def send_audio(self, ulaw: bytes) -> None:
        """One frame of PCMU (160 bytes: 20 ms)."""
        self._packet(0, ulaw, False, self.timestamp)
        self.timestamp += len(ulaw)

    async def press(self, key: str, duration_ms: int = 100) -> None:
        """A key as RFC 4733 events: a packet every 20 ms, then three end packets."""
        event = "0123456789*#ABCD".index(key)
        start = self.timestamp
        steps = max(1, duration_ms // 20)
        for step in range(steps):
            payload = struct.pack("!BBH", event, 10, step * 160)
            self._packet(self.events_pt, payload, step == 0, start)
            await asyncio.sleep(0.02)
        for _ in range(3):
            self._packet(
                self.events_pt, struct.pack("!BBH", event, 0x8A, steps * 160), False, start
            )
        self.timestamp += steps * 160

    async def hang_up(self) -> None:
        """BYE (unless the gateway ended the call), sent again until answered."""
        if not self.ended.is_set():
            self.cseq += 1
            await self.phones.request(self, "BYE", self.cseq, self.target)
        self.close()

    def close(self) -> None:
        self.ended.set()
        self.phones.calls.pop(self.call_id, None)
        self.rtp.close()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, phones: SipPhones) -> None:
        self.phones = phones

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.phones.received(data, (str(addr[0]), int(addr[1])))


class SipPhones:
    """Phones on `host` calling the gateway at `target` (host, port)."""

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.port = 0
        self.calls: dict[str, SipCall] = {}
        self._waiting: dict[tuple[str, str], asyncio.Future[Message]] = {}
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, 0)
        )
        self.port = int(self._transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        for call in list(self.calls.values()):
            call.close()
        if self._transport is not None:
            self._transport.close()

    def send(self, data: bytes, to: tuple[str, int] | None = None) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, to or self.target)

    def received(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            msg = parse(data)
        except SipError:
            return
        call_id = msg.get("call-id") or ""
        if msg.is_request:
            if msg.method in ("BYE", "OPTIONS", "INFO"):
                self.send(response(msg, 200, vias=msg.all("via")), source)
            call = self.calls.get(call_id)
            if msg.method == "BYE" and call is not None:
                call.close()
            return
        if msg.status < 200:
            return
        waiter = self._waiting.get((call_id, msg.cseq()[1]))
        if waiter is not None and not waiter.done():
            waiter.set_result(msg)

    async def request(self, call: SipCall, method: str, cseq: int, uri: str) -> Message:
        """Send a request until its final response comes (T1 doubling to 4 s)."""
        body = call.offer() if method == "INVITE" else b""
        headers = call.headers(method, cseq, "z9hG4bK" + secrets.token_hex(8))
        if body:
            headers.append(("Content-Type", "application/sdp"))
        data = render(f"{method} {uri} SIP/2.0", headers, body)
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[(call.call_id, method)] = waiter
        try:
            interval, deadline = T1, asyncio.get_running_loop().time() + ANSWER_TIMEOUT_S
            while True:
                self.send(data)
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise CallFailed(f"sip: no answer to {method}")
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(waiter), min(interval, left))
                interval = min(2 * interval, 4.0)
        finally:
            self._waiting.pop((call.call_id, method), None)

    async def call(self, number: str) -> SipCall:
        """A call answered and acknowledged; `CallFailed` when refused or unanswered."""
        call = SipCall(self, number)
        self.calls[call.call_id] = call
        uri = f"sip:jam@{self.target[0]}:{self.target[1]}"
        try:
            answer = await self.request(call, "INVITE", 1, uri)
            if answer.status >= 300:
                raise CallFailed(f"sip: INVITE answered {answer.status}")
            call.remote_tag = tag_of(answer.get("to"))
            call.target = name_addr(answer.get("contact") or f"<{uri}>")[0]
            found = sdp.offer(answer.body)
            call.rtp_to = (found.address, found.port)
            call.events_pt = found.events if found.events is not None else EVENT_PT
        except (CallFailed, SipError):
            call.close()
            raise
        ack = call.headers("ACK", 1, "z9hG4bK" + secrets.token_hex(8))
        self.send(render(f"ACK {call.target} SIP/2.0", ack))
        return call
