"""The SIP user agent server that answers a trunk (RFC 3261), with no I/O: bytes and
the time in, `Send` / `Started` / `Pressed` / `Ended` actions out.

- Server transactions (§17.2): a retransmitted request is answered from the cache; a
  non-2xx final response to an INVITE is sent again (timer G, T1 doubling up to T2)
  until the ACK or timer H; every transaction is forgotten 64·T1 after its final
  response (timers I and J, rounded up).
- An INVITE with a usable SDP offer: 100 Trying, (180 Ringing for `answer_after_s`,)
  then 200 with our SDP answer, sent again until the ACK (§13.3.1.4); no ACK in 64·T1:
  BYE and the call ends. An INVITE without SDP gets our offer in the 200 and the ACK
  brings the answer (§13.2.1); an unusable one ends the call with a BYE. No common
  codec: 488; no free RTP port or too many calls: 503 / 486. CANCEL of a ringing
  call: 200, then 487 to the INVITE.
- In a dialog: BYE (200, the caller leaves), a re-INVITE (200: the same answer to a
  refresh; to a new offer, hold or resume, a new answer and the media follow it), INFO
  keys (application/dtmf-relay), ACK; an unknown dialog gets 481. OPTIONS: 200.
- Responses go where §18.2.2 and RFC 3581 say: the source address (``received``) and,
  with ``rport``, the source port. Record-Route is copied into the 2xx and becomes the
  route set of our requests (§12.1.1); our BYE is a client transaction (timer E/F).
- The caller's number (P-Asserted-Identity, else From) becomes a pseudonym at once;
  only "…12" is kept for display (none under ``Privacy: id``).
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import re
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ...contract.events import KEYS
from ...contract.privacy import call_pseudonym, masked, number_digits, pseudonym
from ...ratelimit import LogOnce
from . import sdp
from .media import CallMedia
from .message import (
    Message,
    SipError,
    name_addr,
    parse,
    render,
    response,
    tag_of,
    uri_host_port,
    uri_user,
    via,
)
from .register import Registration
from .timers import T2, T4, TIMEOUT, Action, Ended, Pressed, Send, Started, Timers, retransmit

log = logging.getLogger("relay.sip")

Address = tuple[str, int]
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"
_RPORT = re.compile(r";\s*rport(?=\s*(;|$))", re.IGNORECASE)


@dataclass(eq=False)
class ServerTx:
    key: tuple[str, str, str]
    request: Message
    vias: list[str]
    dest: Address
    transport: str
    last: Send | None = None
    final: int = 0
    acked: bool = False
    call: Call | None = None


@dataclass(eq=False)
class Call:
    key: str
    call_id: str
    local_tag: str
    local: str  # our To, with our tag: the From of our requests
    remote: str  # their From: the To of our requests
    target: str  # their Contact URI: the Request-URI of our requests
    routes: list[str]  # Record-Route as received: the Route set of our requests
    source: Address
    caller: str
    display: str | None
    rtp_port: int
    media: CallMedia
    answer: bytes
    invite: ServerTx
    transport: str
    state: str = "ringing"  # ringing, answered (2xx sent, no ACK yet), confirmed, ended
    late_offer: bool = False  # the INVITE had no SDP: our 200 offers, the ACK answers
    session: int = 0  # our SDP's session id; its version is session + version
    version: int = 0
    answered_at: float = 0.0
    bye_after_ack: bool = False
    end_reason: str = "closed"  # the leave's reason when it ends after the ACK
    cseq: int = 0


@dataclass
class Limits:
    answer_after_s: float = 0.0  # ring this long before answering (0: answer at once)
    max_calls: int = 200
    silence_s: float = 30.0  # no RTP this long: hang up
    max_call_s: float = 3600.0
    max_transactions: int = 4096
    inband: bool = True
    music: bool = False  # the relay plays the show down the line: our SDP may send


class UserAgent:
    """Every call and transaction of one SIP listener. `allocate` gives a free RTP port
    (None: none free); it is given back with `Ended`. `allowed` says whether a source
    address may speak to us; `refuse` is "403" (answer) or "drop" (stay silent)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        key: bytes,
        allocate: Callable[[], int | None],
        allowed: Callable[[str], bool] = lambda address: True,
        refuse: str = "403",
        limits: Limits | None = None,
    ) -> None:
        self.host, self.port, self.key = host, port, key
        self.allocate, self.allowed, self.refuse = allocate, allowed, refuse
        self.limits = limits or Limits()
        self.timers = Timers()
        self.calls: dict[str, Call] = {}
        self.dialogs: dict[tuple[str, str], Call] = {}
        self.server: dict[tuple[str, str, str], ServerTx] = {}
        self.client: set[str] = set()  # branches of our BYEs still waiting for an answer
        self.counts: Counter[str] = Counter()
        self.accepting = True
        self.registration: Registration | None = None  # with a carrier, when [sip] says
        self._numbers = itertools.count(1)
        self._logged = LogOnce(every_s=60.0, burst=20)
        self._sweeping = False

    # -- the doors --

    def start(self, now: float) -> None:
        """Begin the once-a-second check of silent and overlong calls."""
        if not self._sweeping:
            self._sweeping = True
            self.timers.at(now + 1.0, self._sweep)

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def poll(self, now: float) -> list[Action]:
        return self.timers.due(now)

    def receive(
        self, data: bytes, source: Address, now: float, transport: str = "UDP"
    ) -> list[Action]:
        """One datagram, or one framed message of a stream (`transport` "TCP"), from
        `source` (a stream's peer address: the answers go back on its connection)."""
        if not self.allowed(source[0]):
            self._note("forbidden", now, "SIP from %s refused: not in [sip] allow_from", source[0])
            if self.refuse == "403" and not data.startswith((b"ACK ", b"SIP/")):
                try:
                    msg = parse(data)
                    vias, dest = self._reply_path(msg, source, transport)
                except SipError:
                    return []
                return [Send(response(msg, 403, vias=vias), dest, transport)]
            return []
        try:
            msg = parse(data, stream=transport != "UDP")
            if msg.is_request:
                return self._request(msg, source, now, transport)
            return self._response(msg, now)
        except SipError as exc:
            self._note(exc.code, now, "SIP message from %s dropped: %s", source[0], exc.message)
            return []

    def rtp(self, key: str, data: bytes, source: Address, now: float) -> list[Action]:
        call = self.calls.get(key)
        if call is None or call.state not in ("answered", "confirmed"):
            return []
        return [Pressed(key, call.caller, k) for k in call.media.feed(data, source, now)]

    def hang_up(self, key: str, now: float, reason: str = "closed") -> list[Action]:
        """End one call from our side: BYE once it is confirmed (§15: not before the
        ACK, which it waits for), 480 while it rings."""
        call = self.calls.get(key)
        if call is None:
            return []
        if call.state == "ringing":
            actions = self._respond(call.invite, 480, now, to_tag=call.local_tag)
            return actions + self._end(call, reason, now, bye=False)
        if call.state == "answered":
            call.bye_after_ack, call.end_reason = True, reason
            return []
        return self._end(call, reason, now, bye=True)

    def end_all(self, now: float) -> list[Action]:
        """Shutdown: refuse new calls (503) and end every call now, BYE included."""
        self.accepting = False
        actions: list[Action] = []
        for call in list(self.calls.values()):
            if call.state == "answered":
                actions += self._end(call, "closed", now, bye=True)
            else:
                actions += self.hang_up(call.key, now)
        return actions

    # -- requests --

    def _request(self, msg: Message, source: Address, now: float, transport: str) -> list[Action]:
        vias, dest = self._reply_path(msg, source, transport)
        top = via(msg.all("via")[0])
        method = "INVITE" if msg.method == "ACK" else msg.method
        branch = top.param("branch") or ""
        if branch.startswith("z9hG4bK"):
            key = (branch, f"{top.host}:{top.port}", method)
        else:  # RFC 2543 peers: no magic cookie (§17.2.3)
            key = (f"{msg.get('call-id')}|{msg.cseq()[0]}|{tag_of(msg.get('from'))}", "", method)
        tx = self.server.get(key)
        if msg.method == "ACK":
            return self._ack(msg, tx, now)
        if tx is not None:
            self.counts["retransmitted"] += 1
            return [tx.last] if tx.last is not None else []
        if len(self.server) >= self.limits.max_transactions:
            self._note("busy", now, "SIP: %d transactions open; answering 503", len(self.server))
            return [Send(response(msg, 503, vias=vias), dest, transport)]
        tx = self.server[key] = ServerTx(key, msg, vias, dest, transport)
        self.timers.at(now + TIMEOUT + T4, lambda at: self._forget(tx))
        if msg.method == "INVITE":
            return self._invite(tx, source, now)
        if msg.method == "OPTIONS":
            return self._respond(
                tx, 200, now, extra=[("Allow", ALLOW), ("Accept", "application/sdp")]
            )
        if msg.method == "CANCEL":
            return self._cancel(tx, now)
        if msg.method in ("BYE", "INFO"):
            call = self.dialogs.get((msg.get("call-id") or "", tag_of(msg.get("to"))))
            if call is None:
                return self._respond(tx, 481, now)
            actions = self._respond(tx, 200, now)
            if msg.method == "BYE":
                return actions + self._end(call, "hangup", now, bye=False)
            return actions + self._info(call, msg, now)
        return self._respond(tx, 405, now, extra=[("Allow", ALLOW)])

    def _forget(self, tx: ServerTx) -> list[Action]:
        if self.server.get(tx.key) is tx:
            del self.server[tx.key]
        return []

    def _reply_path(
        self, msg: Message, source: Address, transport: str
    ) -> tuple[list[str], Address]:
        """The Vias of our responses and where they go (§18.2.2, RFC 3581 §4): the top
        Via gets ``received`` when its host is not the source address, and ``rport``
        its value; the response goes to the source address, to the source port with
        rport, else to the Via's port (5060); on a stream, back on its connection."""
        values = msg.all("via")
        top = via(values[0])
        first = values[0]
        if top.host != source[0]:
            first += f";received={source[0]}"
        rport = top.param("rport")
        if rport == "":
            first = _RPORT.sub(f";rport={source[1]}", first, count=1)
        port = source[1] if rport is not None or transport != "UDP" else top.port or 5060
        return [first, *values[1:]], (source[0], port)

    def _respond(
        self,
        tx: ServerTx,
        status: int,
        now: float,
        *,
        to_tag: str = "",
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> list[Action]:
        data = response(tx.request, status, vias=tx.vias, to_tag=to_tag, extra=extra, body=body)
        send = tx.last = Send(data, tx.dest, tx.transport)
        if status >= 200:
            tx.final = status
            if tx.request.method == "INVITE" and status >= 300:  # timers G and H
                retransmit(
                    self.timers, now, send, lambda: not tx.acked,
                    cap=T2, give_up=lambda at: [], reliable=tx.transport != "UDP",
                )  # fmt: skip
        return [send]

    def _invite(self, tx: ServerTx, source: Address, now: float) -> list[Action]:
        msg = tx.request
        call_id = msg.get("call-id") or ""
        to_tag = tag_of(msg.get("to"))
        if to_tag:  # a re-INVITE: a refresh (the same answer), or a new offer (hold)
            call = self.dialogs.get((call_id, to_tag))
            if call is None:
                return self._respond(tx, 481, now)
            if msg.body and not self._reoffer(call, msg, now):
                return self._respond(tx, 488, now)
            extra = [*self._dialog_headers(call), ("Content-Type", "application/sdp")]
            return self._respond(tx, 200, now, extra=extra, body=call.answer)
        if not self.accepting:
            return self._respond(tx, 503, now)
        if len(self.calls) >= self.limits.max_calls:
            self._note("full", now, "SIP: %d calls already; answering 486", len(self.calls))
            return self._respond(tx, 486, now)
        try:
            offer = sdp.offer(msg.body) if msg.body else None
            target = name_addr(msg.get("contact") or "")[0]
            if not target.lower().startswith(("sip:", "sips:")):
                raise SipError("bad_sip", "no sip: Contact", 400)
        except SipError as exc:
            self._note(exc.code, now, "SIP INVITE from %s refused: %s", source[0], exc.message)
            return self._respond(tx, exc.status or 400, now)
        port = self.allocate()
        if port is None:
            self._note("no_port", now, "SIP: no free RTP port in [sip] rtp_ports; answering 503")
            return self._respond(tx, 503, now)
        caller, display = self._caller(msg, call_id)
        local_tag = secrets.token_hex(6)
        local = f"{msg.get('to')};tag={local_tag}"
        session = secrets.randbelow(2**31)
        media = self._media(offer, source, now)
        if offer is None:  # until the ACK's answer says otherwise: what we offer
            answer = sdp.our_offer(self.host, port, session, self.limits.music)
        else:
            answer = sdp.answer(offer, self.host, port, session, send=self.limits.music)
        call = Call(
            f"sip-{next(self._numbers)}", call_id, local_tag, local, msg.get("from") or "",
            target, msg.all("record-route"), source, caller, display, port, media, answer, tx,
            tx.transport,
        )  # fmt: skip
        call.late_offer, call.session = offer is None, session
        tx.call = call
        self.calls[call.key] = call
        self.dialogs[(call_id, local_tag)] = call
        actions = self._respond(tx, 100, now)
        if self.limits.answer_after_s <= 0:
            return actions + self._answer(call, now)
        actions += self._respond(tx, 180, now, to_tag=local_tag, extra=self._dialog_headers(call))
        self.timers.at(now + self.limits.answer_after_s, lambda at: self._answer(call, at))
        return actions

    def _media(self, found: sdp.Offer | None, source: Address, now: float) -> CallMedia:
        """A call's media as the SDP `found` says (None: our own offer's, until the
        ACK's answer), its RTP taken from the SDP's address or the INVITE's source."""
        if found is None:
            return CallMedia(
                codec=0, alaw=False, events=sdp.OUR_EVENTS, expected=(source[0],),
                inband=self.limits.inband, now=now,
            )  # fmt: skip
        media = CallMedia(
            codec=found.codec, alaw=found.codec_name == "PCMA", events=found.events,
            expected=tuple({found.address, source[0]}), inband=self.limits.inband, now=now,
        )  # fmt: skip
        self._aim(media, found, now)
        return media

    def _aim(self, media: CallMedia, found: sdp.Offer, now: float) -> None:
        """Our RTP out as `found` says: to its address, and only if it receives; and
        whether the caller sends at all (else its silence is no sign it is gone)."""
        media.peer = (found.address, found.port)
        media.send = self.limits.music and found.receives
        if found.sends and not media.caller_sends:  # off hold: its silence counts from now
            media.last_packet = now
        media.caller_sends = found.sends

    def _reoffer(self, call: Call, msg: Message, now: float) -> bool:
        """A re-INVITE's offer (hold, resume, a new address): the call's media follow
        it and our answer changes with it (its version one more, RFC 3264 §8).
        False: it cannot be answered (488; the session stays as it was, §14.2)."""
        try:
            found = sdp.offer(msg.body)
        except SipError as exc:
            self._note(exc.code, now, "SIP: a re-INVITE's offer refused: %s", exc.message)
            return False
        media = call.media
        if found.address not in media.expected:  # moved: latch again, from there
            media.expected, media.source = (found.address, call.source[0]), None
        media.codec, media.alaw = found.codec, found.codec_name == "PCMA"
        if media.decoder is not None and found.events is not None:
            media.decoder.payload_type = found.events
        self._aim(media, found, now)
        answer = sdp.answer(
            found, self.host, call.rtp_port, call.session, call.version, self.limits.music
        )
        if answer != call.answer:
            call.version += 1
            answer = sdp.answer(
                found, self.host, call.rtp_port, call.session, call.version, self.limits.music
            )
        call.answer = answer
        return True

    def _dialog_headers(self, call: Call) -> list[tuple[str, str]]:
        return [("Record-Route", route) for route in call.routes] + [
            ("Contact", f"<sip:{self._host_port()}{self._param(call.transport)}>"),
            ("Allow", ALLOW),
        ]

    def _host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @staticmethod
    def _param(transport: str) -> str:
        return "" if transport == "UDP" else f";transport={transport.lower()}"

    def _answer(self, call: Call, now: float) -> list[Action]:
        if call.state != "ringing":
            return []
        extra = [*self._dialog_headers(call), ("Content-Type", "application/sdp")]
        (send,) = self._respond(
            call.invite, 200, now, to_tag=call.local_tag, extra=extra, body=call.answer
        )
        assert isinstance(send, Send)
        call.state, call.answered_at = "answered", now
        call.media.last_packet = now
        retransmit(
            self.timers, now, send, lambda: call.state == "answered",
            cap=T2, give_up=lambda at: self._end(call, "timeout", at, bye=True),
            reliable=call.transport != "UDP",
        )  # fmt: skip
        self.counts["answered"] += 1
        return [send, Started(call.key, call.caller, call.display, call.rtp_port)]

    def _ack(self, msg: Message, tx: ServerTx | None, now: float) -> list[Action]:
        call = self.dialogs.get((msg.get("call-id") or "", tag_of(msg.get("to"))))
        if call is not None and call.state == "answered":
            call.state = "confirmed"
            if call.late_offer:
                try:
                    answer = sdp.offer(msg.body)
                except SipError as exc:  # §13.3.1.4: an unusable answer ends the call
                    self._note(exc.code, now, "SIP: the ACK's SDP answer: %s", exc.message)
                    return self._end(call, "closed", now, bye=True)
                call.media = self._media(answer, call.source, now)
            if call.bye_after_ack:
                return self._end(call, call.end_reason, now, bye=True)
        elif tx is not None and tx.final >= 300:
            tx.acked = True
        return []

    def _cancel(self, tx: ServerTx, now: float) -> list[Action]:
        branch, sent_by, _ = tx.key
        invite = self.server.get((branch, sent_by, "INVITE"))
        if invite is None:
            return self._respond(tx, 481, now)
        call = invite.call
        actions = self._respond(tx, 200, now, to_tag=call.local_tag if call else "")
        if invite.final == 0:
            actions += self._respond(invite, 487, now, to_tag=call.local_tag if call else "")
            if call is not None:
                actions += self._end(call, "hangup", now, bye=False)
        return actions

    def _info(self, call: Call, msg: Message, now: float) -> list[Action]:
        """A key sent as SIP INFO (application/dtmf-relay: ``Signal=5``; application/dtmf)."""
        kind = (msg.get("content-type") or "").lower().partition(";")[0].strip()
        text = msg.body[:256].decode("utf-8", "replace")
        if kind == "application/dtmf-relay":
            fields = dict(line.partition("=")[::2] for line in text.splitlines())
            text = {k.strip().lower(): v.strip() for k, v in fields.items()}.get("signal", "")
        elif kind != "application/dtmf":
            return []
        key = text.strip().upper()
        key = {"10": "*", "11": "#"}.get(key, key)
        if call.state not in ("answered", "confirmed") or key not in KEYS:
            return []
        if not call.media.merger.press("info", key, now):
            return []
        return [Pressed(call.key, call.caller, key)]

    # -- the caller, the end, our BYE --

    def _caller(self, msg: Message, call_id: str) -> tuple[str, str | None]:
        digits = ""
        for value in (msg.get("p-asserted-identity"), msg.get("from")):
            try:
                uri = name_addr((value or "").split(",")[0])[0]
            except SipError:
                continue
            digits = number_digits(uri_user(uri))
            if digits:
                break
        if not digits:
            return call_pseudonym(f"sip call {call_id}", self.key), None
        hidden = {"id", "user"} & set(re.split(r"[;,\s]+", (msg.get("privacy") or "").lower()))
        return pseudonym(digits, self.key), None if hidden else masked(digits)

    def _end(self, call: Call, reason: str, now: float, *, bye: bool) -> list[Action]:
        if call.state == "ended":
            return []
        started = call.state in ("answered", "confirmed")
        call.state = "ended"
        self.calls.pop(call.key, None)
        self.dialogs.pop((call.call_id, call.local_tag), None)
        actions: list[Action] = []
        if started:
            actions += [Pressed(call.key, call.caller, k) for k in call.media.flush(now)]
        if bye:
            actions += self._bye(call, now)
        actions.append(Ended(call.key, call.caller, started, reason, call.rtp_port))
        return actions

    def _bye(self, call: Call, now: float) -> list[Action]:
        call.cseq += 1
        branch = "z9hG4bK" + secrets.token_hex(8)
        headers = [
            ("Via", f"SIP/2.0/{call.transport} {self._host_port()};branch={branch};rport"),
            ("Max-Forwards", "70"),
            *(("Route", route) for route in call.routes),
            ("From", call.local),
            ("To", call.remote),
            ("Call-ID", call.call_id),
            ("CSeq", f"{call.cseq} BYE"),
        ]
        # On a stream, back on the INVITE's connection (opened again if it closed).
        hop = self._next_hop(call) if call.transport == "UDP" else call.source
        send = Send(render(f"BYE {call.target} SIP/2.0", headers), hop, call.transport)
        self.client.add(branch)
        self.counts["bye_sent"] += 1

        def give_up(at: float) -> list[Action]:
            self.client.discard(branch)
            self.counts["bye_unanswered"] += 1
            return []

        retransmit(
            self.timers, now, send, lambda: branch in self.client,
            cap=T2, give_up=give_up, reliable=call.transport != "UDP",
        )  # fmt: skip
        return [send]

    def _next_hop(self, call: Call) -> Address:
        """The first route's address, else the remote target's (§12.2.1.1, loose
        routing); a host name, or anything unreadable, sends to the INVITE's source."""
        uri = name_addr(call.routes[0])[0] if call.routes else call.target
        try:
            host, port = uri_host_port(uri)
            ipaddress.ip_address(host)
        except (SipError, ValueError):
            return call.source
        return host, port or 5060

    def _response(self, msg: Message, now: float) -> list[Action]:
        if msg.cseq()[1] == "REGISTER" and self.registration is not None:
            return self.registration.response(msg, now)
        branch = via(msg.all("via")[0]).param("branch") or ""
        if branch in self.client and msg.status >= 200:
            self.client.discard(branch)
        return []

    def _sweep(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for call in list(self.calls.values()):
            if call.state not in ("answered", "confirmed"):
                continue
            media = call.media  # a caller that said it sends nothing (hold) is not silent
            silent = media.caller_sends and now - media.last_packet > self.limits.silence_s
            if silent or now - call.answered_at > self.limits.max_call_s:
                self.counts["silent" if silent else "too_long"] += 1
                actions += self.hang_up(call.key, now, "timeout")
        self.timers.at(now + 1.0, self._sweep)
        return actions

    def _note(self, code: str, now: float, message: str, *args: object) -> None:
        self.counts[code] += 1
        self._logged.log(log, logging.WARNING, code, message, *args, now=now)


__all__ = ["Call", "Limits", "UserAgent"]
