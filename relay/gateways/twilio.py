"""Twilio Media Streams gateway: phone callers through Twilio become `join` / `digit` /
`leave` events on the installation's channel.

Three doors, all mounted on the relay's app, all checking Twilio's signature
(twilio_signature.py: the auth token's HMAC-SHA1, or a Webhooks Rule's shared key
and HMAC-SHA256, as the headers say):

- ``POST /twilio/voice`` — the number's voice webhook. The caller's number (``From``)
  is turned into a keyed pseudonym at once and is never kept or logged; the answer is
  TwiML: a short ``<Say>``, then ``<Connect><Stream>`` (bidirectional streams are the
  ones that carry ``dtmf`` messages) whose ``<Parameter>``s carry the channel, the
  pseudonym, the number's last two digits (none when it has no digits: Twilio keeps
  no empty ``<Parameter>``) and a seal over them, because the stream's ``start``
  message carries no number; its ``statusCallback`` is the third door.
- ``GET /twilio/stream`` — the WebSocket Twilio opens: ``connected``, ``start``,
  ``media``, ``dtmf``, ``mark``, ``stop``, as Twilio documents them at
  https://www.twilio.com/docs/voice/media-streams/websocket-messages (the TwiML:
  https://www.twilio.com/docs/voice/twiml/stream; the signature:
  https://www.twilio.com/docs/usage/webhooks/webhooks-security).
- ``POST /twilio/stream-status`` — the stream's status callback (``StreamEvent``
  ``stream-started``, ``stream-stopped``, ``stream-error`` with ``StreamError``): a
  failed stream is counted (``twilio_stream_error`` in /metrics) and logged once per
  error, where otherwise only Twilio's debugger would show it.

`TwilioStream` is the pure core of one stream (JSON in, events out, no I/O); the
handlers only check signatures, feed it and publish what it returns. With
``[twilio] inband_dtmf`` (the default) the core also listens to the caller's audio
with the Goertzel detector of ``dtmf.py``, for phones whose keys reach Twilio only as
sound and for ``<Start><Stream>`` streams, which carry no ``dtmf`` messages; a press
reported both ways counts once (``dtmf.PressMerger``); a jump in ``media.timestamp``
is audio lost on the way, told to the detector (``DtmfDetector.lost``). A bad message is
the peer's fault: it is counted, logged once per stream and kind, and the stream goes on.
With the relay's phone music on, each stream also carries the music back to its caller
from its ``start``, with marks and clears (``twilio_media.py``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from ..config import RelayConfig, TwilioConfig, pseudonym_key
from ..contract.errors import PeerError
from ..contract.privacy import call_pseudonym, number_digits, pseudonym
from ..phone_feed import PhoneFeed
from ..protocol import CLOSE_TOO_BIG
from ..ratelimit import LogOnce
from ..state import STATE
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
    websocket_url,
)
from .dtmf import DtmfDetector, PressMerger
from .twilio_media import MediaOut, MediaStats, MediaWriter
from .twilio_signature import (
    SETTINGS_HEADER,
    SIGNATURE_HEADER,
    Keys,
    check,
    compute_signature,
    parse_shared_keys,
    signature_ok,
    url_variants,
)

# What the gateway's callers import from here (the signatures have a module of their own).
__all__ = [
    "SIGNATURE_HEADER",
    "STATUS_PATH",
    "STREAM_PATH",
    "TWILIO",
    "VOICE_PATH",
    "TwilioGateway",
    "TwilioStream",
    "compute_signature",
    "connect_twiml",
    "seal",
    "signature_ok",
    "url_variants",
]
from .kicks import watch_kicks

log = logging.getLogger("relay.twilio")

VOICE_PATH = "/twilio/voice"
STREAM_PATH = "/twilio/stream"
STATUS_PATH = "/twilio/stream-status"
# Twilio's frames are small (a 20 ms media frame is about 400 bytes of JSON).
MAX_MESSAGE = 65536
# The <Stream statusCallback>'s events (https://www.twilio.com/docs/voice/twiml/stream).
STREAM_EVENTS = ("stream-started", "stream-stopped", "stream-error")


# -- TwiML (pure) --


def connect_twiml(
    stream_url: str, greeting: str, parameters: dict[str, str], status_url: str = ""
) -> str:
    """`<Say>` the greeting, then `<Connect><Stream>` with `<Parameter>`s (and with
    `status_url`, a POSTed statusCallback); escaped by ElementTree, so a greeting with
    `<` or `&` stays text."""
    response = ET.Element("Response")
    if greeting:
        ET.SubElement(response, "Say").text = greeting
    connect = ET.SubElement(response, "Connect")
    stream = ET.SubElement(connect, "Stream", url=stream_url)
    if status_url:
        stream.set("statusCallback", status_url)
        stream.set("statusCallbackMethod", "POST")
    for name, value in parameters.items():
        ET.SubElement(stream, "Parameter", name=name, value=value)
    body = ET.tostring(response, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def seal(key: bytes, call_sid: str, channel: str, caller: str, last_digits: str) -> str:
    """Our own MAC over a call's stream parameters: a stream upgrade signature covers
    only the URL, so without it a replayed upgrade could claim any caller or channel."""
    text = "\n".join((call_sid, channel, caller, last_digits)).encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()[:32]


# -- one stream (pure core) --


@dataclass(frozen=True)
class Call:
    """A caller on one Media Stream (no number: only its pseudonym)."""

    channel: str
    caller: str


class StreamError(PeerError):
    """A message the stream cannot use: the peer's fault, never the relay's."""


def _field(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind):
        raise StreamError("bad_field", f"{where}.{name} missing or not a {kind.__name__}")
    return value


@dataclass
class TwilioStream:
    """The messages of one Twilio Media Stream in, events out. Raises `StreamError`
    for a bad message and keeps going: the next good one works.

    With `inband`, the caller's inbound μ-law audio goes through a DTMF detector too;
    `now` (seconds, any steady clock) only serves to tell one press reported twice
    (a `dtmf` message and its tone) from two presses."""

    seal_key: bytes
    inband: bool = True
    call: Call | None = None
    stopped: bool = False
    detector: DtmfDetector | None = None
    presses: PressMerger = field(default_factory=PressMerger)
    next_ms: int | None = None  # where the next inbound media should start (its timestamp)
    stream_sid: str = ""  # the start's: what our messages back to Twilio name
    on_mark: Callable[[str, float], None] | None = None  # a mark's name, when it came back

    def receive(self, frame: str | bytes, now: float) -> list[Event]:
        msg, event = json_object(frame, "event", StreamError)
        if event == "mark":  # a mark we sent, echoed once the audio before it played
            name = _field(_field(msg, "mark", dict, ""), "name", str, "mark")
            if self.on_mark is not None:
                self.on_mark(name, now)
            return []
        if event == "connected":
            return []
        if self.stopped:
            raise StreamError("after_stop", f"{event} after stop")
        if event == "start":
            return self._start(msg)
        if event not in ("media", "dtmf", "stop"):
            raise StreamError("unknown_event", f"unknown event {event[:32]!r}")
        call = self.call
        if call is None:
            raise StreamError("no_start", f"{event} before start")
        if event == "media":
            media = _field(msg, "media", dict, "")
            payload = _field(media, "payload", str, "media")
            try:
                ulaw = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise StreamError("bad_field", "media.payload is not base64") from None
            track = media.get("track")
            if self.detector is None or (isinstance(track, str) and track != "inbound"):
                return []  # no detector, or our own audio echoed back: not the caller's keys
            keys = self._gap(media.get("timestamp"), len(ulaw))
            keys += self.detector.feed_ulaw(ulaw)
            return [out for key in keys for out in self.digit(key, "tone", now)]
        if event == "dtmf":
            dtmf = _field(msg, "dtmf", dict, "")
            digit = _field(dtmf, "digit", str, "dtmf")
            if digit not in KEYS:
                raise StreamError("bad_digit", "dtmf.digit is not one of 0-9 * # A-D")
            return self.digit(digit, "event", now)
        return self.hang_up()  # stop

    def _gap(self, timestamp: object, samples: int) -> list[str]:
        """Tell the detector about inbound audio that never came: a ``media.timestamp``
        (ms from the stream's start) at least half a frame past where the previous
        payload ended (a held key then goes on through the gap instead of splitting).
        A missing or odd timestamp tells nothing."""
        assert self.detector is not None
        if not isinstance(timestamp, str) or not timestamp.isdigit() or len(timestamp) > 12:
            return []
        at, expected = int(timestamp), self.next_ms
        if expected is not None and at < expected - 10:
            return []  # out of order or repeated: leave the reckoning as it is
        self.next_ms = at + samples // 8
        if expected is None or at - expected < 10:
            return []
        return self.detector.lost(min(at - expected, 1000) * 8)

    def digit(self, key: str, how: str, now: float) -> list[Event]:
        """A key press of this stream's caller, heard `how` ("event": a `dtmf`
        message; "tone": in the audio): one event, or none when it is the second
        report of a press already counted."""
        call = self.call
        assert call is not None
        if not self.presses.press(how, key, now):
            return []
        return [digit_event(call.channel, call.caller, key, "twilio")]

    def kicked(self) -> None:
        """The operator kicked the caller: no `leave` from the stream (the billboard
        said ``leave`` ``kicked``), and nothing more is heard."""
        self.stopped = True

    def hang_up(self) -> list[Event]:
        """`stop`, or the socket closed: the caller leaves (once)."""
        if self.call is None or self.stopped:
            return []
        self.stopped = True
        return [leave_event(self.call.channel, self.call.caller)]

    def _start(self, msg: dict[str, Any]) -> list[Event]:
        if self.call is not None:
            raise StreamError("second_start", "a second start on one stream")
        start = _field(msg, "start", dict, "")
        call_sid = _field(start, "callSid", str, "start")
        sid = start.get("streamSid", msg.get("streamSid"))
        if not isinstance(sid, str) or not 0 < len(sid) <= 64:
            raise StreamError("bad_field", "streamSid missing or not a string of 1-64")
        params = _field(start, "customParameters", dict, "start")
        channel = _field(params, "channel", str, "start.customParameters")
        caller = _field(params, "caller", str, "start.customParameters")
        # A caller without digits gets no last_digits at all (Twilio keeps no empty
        # <Parameter>); the seal covers it as "".
        last = params.get("last_digits", "")
        if not isinstance(last, str):
            raise StreamError("bad_field", "start.customParameters.last_digits not a string")
        given = _field(params, "seal", str, "start.customParameters")
        expected = seal(self.seal_key, call_sid, channel, caller, last)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise StreamError("bad_seal", "stream parameters not sealed by this relay")
        fmt = start.get("mediaFormat")
        ulaw_8k = isinstance(fmt, dict) and (
            fmt.get("encoding"),
            fmt.get("sampleRate"),
            fmt.get("channels"),
        ) == ("audio/x-mulaw", 8000, 1)
        self.call, self.stream_sid = Call(channel, caller), sid
        if self.inband and ulaw_8k:
            self.detector = DtmfDetector()
        return [join_event(channel, caller, "twilio", f"…{last}" if last else None)]


# -- the aiohttp adapter --


class TwilioGateway:
    """Mounts the webhook, the stream and the stream's status callback on the relay's
    app and publishes their events."""

    def __init__(
        self,
        config: TwilioConfig,
        relay: RelayConfig,
        publish: PublishFn,
        count_error: CountError,
        phone: PhoneFeed | None = None,
    ) -> None:
        self.config = config
        self.phone = phone  # the music down the line (twilio_media.py), None: silence
        self.music = MediaStats()
        self.relay = relay
        self.channel = config.channel_for(relay)
        self.publish = Publisher(publish, count_error, log)
        self._count_error = count_error
        key = pseudonym_key(relay)
        self._key = key
        self._seal_key = hmac.new(key, b"dialjam twilio stream seal", hashlib.sha256).digest()
        self.keys = Keys(config.auth_token, parse_shared_keys(config.shared_keys))
        self.refused_signatures = 0
        self._signature_log = LogOnce(every_s=60.0, burst=20)
        self._status_log = LogOnce(every_s=60.0, burst=20)
        self.stream_count = 0
        self.failed_streams = 0
        # The open streams of each caller: a kick closes them.
        self.streams: dict[str, dict[web.WebSocketResponse, TwilioStream]] = {}
        if not self.keys.checked:
            log.warning(
                "[twilio] auth_token is empty: X-Twilio-Signature is not checked, so anyone "
                "can pose as Twilio and play"
            )

    def mount(self, app: web.Application) -> None:
        app[TWILIO] = self
        app[STATE].gateway_health["twilio"] = self.health
        app.router.add_post(VOICE_PATH, self.voice)
        app.router.add_get(STREAM_PATH, self.stream)
        app.router.add_post(STATUS_PATH, self.stream_status)
        watch_kicks(app, self.channel, self.hang_up, self.end_calls, log)

    def health(self) -> dict[str, Any]:
        """Open streams and, with the phone music on, what was sent back to Twilio."""
        streams = sum(len(mine) for mine in self.streams.values())
        music = self.music.figures() if self.phone is not None else {"music": None}
        return {"streams": streams, **music}

    async def hang_up(self, caller: str, why: str) -> None:
        """End every call of `caller`: Twilio resumes the TwiML after ``<Connect>`` when
        our server closes the stream, and ours has nothing after it, so the call ends
        (https://www.twilio.com/docs/api/errors/31921: Twilio's debugger notes the close
        as that warning)."""
        streams = self.streams.pop(caller, {})
        for ws, core in streams.items():
            core.kicked()
            await ws.close(code=1000, message=why.encode()[:120])
        if streams:
            log.info("hung up caller %s (%s): %d stream(s) closed", caller, why, len(streams))

    async def end_calls(self) -> int:
        """The operator's ``end_calls``: every stream closes, so every call ends (see
        `hang_up`), and each caller leaves (``hangup``) at once. Returns how many calls."""
        everyone, self.streams = self.streams, {}
        calls = [(ws, core) for streams in everyone.values() for ws, core in streams.items()]
        for _ws, core in calls:
            for out in core.hang_up():
                self.publish(out)
        await asyncio.gather(*(ws.close(code=1000, message=b"end_calls") for ws, _ in calls))
        if calls:
            log.info("ended %d call(s): the operator's end_calls", len(calls))
        return len(calls)

    # -- helpers --

    def base_url(self, request: web.Request) -> str:
        """The address Twilio reaches: public_url (behind a TLS proxy the request's own
        scheme and host are not what Twilio used), else (a rehearsal on loopback, see
        twilio_setup) the request's own."""
        return self.relay.public_url.rstrip("/") or f"{request.scheme}://{request.host}"

    def requested_url(self, request: web.Request) -> str:
        """The URL Twilio asked for, the one it signed: the base + path + query."""
        return self.base_url(request) + request.raw_path

    def signed(
        self,
        request: web.Request,
        url: str,
        params: Iterable[tuple[str, str]],
        alternatives: Iterable[str] = (),
    ) -> bool:
        """Whether the request's headers sign `url` and `params` (see
        twilio_signature); a refusal is counted and logged once per reason a minute,
        saying what was expected and received."""
        verdict = check(
            self.keys,
            url,
            params,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(SETTINGS_HEADER),
            alternatives,
        )
        if verdict.ok:
            return True
        self.refused_signatures += 1
        self._count_error("twilio_bad_signature")
        # A prober never floods the log: one line a minute per reason, within a budget.
        self._signature_log.log(
            log,
            logging.WARNING,
            (verdict.reason, verdict.algorithm, verdict.key, request.path),
            "refused %s %s from %s: %s (%d refused so far)",
            request.method,
            request.path,
            request.remote,
            verdict.detail,
            self.refused_signatures,
            now=time.monotonic(),
        )
        return False

    async def signed_form(self, request: web.Request) -> dict[str, str]:
        """A webhook's POST parameters, once its signature is checked (403 if not)."""
        form = await request.post()
        params = [(name, value) for name, value in form.items() if isinstance(value, str)]
        if not self.signed(request, self.requested_url(request), params):
            raise web.HTTPForbidden(text=f"bad {SIGNATURE_HEADER}")
        return dict(params)

    # -- handlers --

    async def voice(self, request: web.Request) -> web.Response:
        form = await self.signed_form(request)
        call_sid = form.get("CallSid")
        if not call_sid:
            self._count_error("twilio_bad_webhook")
            raise web.HTTPBadRequest(text="CallSid missing")
        digits = number_digits(form.get("From", ""))
        # The number stops here: a pseudonym under our key and its last two digits. A
        # call without one ("anonymous", a client) gets a pseudonym of its own.
        caller = (
            pseudonym(digits, self._key)
            if digits
            else call_pseudonym(f"twilio call {call_sid}", self._key)
        )
        last = digits[-2:]
        parameters = {"channel": self.channel, "caller": caller}
        if last:  # never an empty <Parameter>: the stream would not get it
            parameters["last_digits"] = last
        parameters["seal"] = seal(self._seal_key, call_sid, self.channel, caller, last)
        base = self.base_url(request)
        twiml = connect_twiml(
            websocket_url(base) + STREAM_PATH,
            self.config.greeting,
            parameters,
            status_url=base + STATUS_PATH,
        )
        log.info("twilio call %s: caller %s (…%s)", call_sid, caller, last or "?")
        return web.Response(text=twiml, content_type="text/xml", charset="utf-8")

    async def stream_status(self, request: web.Request) -> web.Response:
        """The stream's statusCallback: stream-started, stream-stopped, stream-error.
        A failed stream is counted (twilio_stream_error in /metrics) and logged once
        per error a minute, with Twilio's code and message."""
        form = await self.signed_form(request)
        event = form.get("StreamEvent", "")
        if event not in STREAM_EVENTS:
            self._count_error("twilio_bad_webhook")
            raise web.HTTPBadRequest(text="StreamEvent missing or unknown")
        stream_sid = _sid(form.get("StreamSid", ""))
        call_sid = _sid(form.get("CallSid", ""))
        if event != "stream-error":
            log.debug("twilio stream %s of call %s: %s", stream_sid, call_sid, event)
            return web.Response(text="")
        self.failed_streams += 1
        self._count_error("twilio_stream_error")
        code, message = stream_error(form)
        self._status_log.log(
            log,
            logging.ERROR,
            code or message,
            "twilio stream %s of call %s failed: error %s: %s (%d failed streams so far; "
            "Twilio's debugger has the rest)",
            stream_sid,
            call_sid,
            code or "without a code",
            message or "(no message)",
            self.failed_streams,
            now=time.monotonic(),
        )
        return web.Response(text="")

    async def stream(self, request: web.Request) -> web.WebSocketResponse:
        # An assumption, which Twilio's docs do not spell out: the upgrade is signed like
        # a webhook over the <Stream url> we gave (wss://…, with or without :443), with no
        # parameters. The rehearsal crowd signs it with twilio-python, not with our code,
        # and a refusal says whether the signature fits the https:// form instead.
        url = self.requested_url(request)
        if not self.signed(request, websocket_url(url), (), alternatives=url_variants(url)):
            raise web.HTTPForbidden(text=f"bad {SIGNATURE_HEADER}")
        ws = web.WebSocketResponse(
            heartbeat=self.relay.heartbeat_s, max_msg_size=MAX_MESSAGE, compress=False
        )
        await ws.prepare(request)
        self.stream_count += 1
        name = f"twilio stream #{self.stream_count} ({request.remote})"
        core = TwilioStream(self._seal_key, inband=self.config.inband_dtmf)
        logged = LogOnce()  # this stream's bad messages, once per kind
        clock = asyncio.get_running_loop().time
        # The relay's registry counts the stream (/healthz) and closes it on shutdown.
        sockets = request.app[STATE].sockets
        registered = sockets.open_stream("twilio", ws, request)
        music: MediaWriter | None = None
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    try:
                        outputs = core.receive(msg.data, clock())
                    except StreamError as exc:
                        self._refuse(name, core, exc, logged)
                        continue
                    for out in outputs:
                        self.publish(out)
                    if outputs and core.call is not None and not core.stopped:
                        self.streams.setdefault(core.call.caller, {})[ws] = core
                        if music is None and self.phone is not None:  # on its start
                            back = MediaOut(core.stream_sid, self.music)
                            music = MediaWriter(ws, back, clock, logged, request.transport)
                            core.on_mark = music.echoed
                            music.start(self.phone, core.call.caller)
                    if core.stopped and music is not None:
                        await music.close()  # `stop`: Twilio takes no more audio
                elif msg.type is WSMsgType.BINARY:
                    self._refuse(name, core, StreamError("binary", "a binary frame"), logged)
                elif msg.type is WSMsgType.ERROR and getattr(msg.data, "code", 0) == CLOSE_TOO_BIG:
                    # aiohttp closed the stream with 1009 (a message over MAX_MESSAGE).
                    self._refuse(name, core, StreamError("too_large", "over 64 KiB"), logged)
        finally:
            if music is not None:
                await music.close()
            sockets.discard(registered)
            if core.call is not None:
                mine = self.streams.get(core.call.caller, {})
                mine.pop(ws, None)
                if not mine:
                    self.streams.pop(core.call.caller, None)
            # A socket closed without `stop` is a hang-up too.
            for out in core.hang_up():
                self.publish(out)
            if core.presses.merged:
                log.debug("%s: %d presses reported twice, counted once", name, core.presses.merged)
        return ws

    def _refuse(self, name: str, core: TwilioStream, exc: StreamError, logged: LogOnce) -> None:
        self._count_error(f"twilio_{exc.code}")
        caller = core.call.caller if core.call else "no caller yet"
        logged.log(
            log,
            logging.INFO,
            exc.code,
            "ignored a message on %s (%s): %s",
            name,
            caller,
            exc.message,
        )


_SID = re.compile(r"[A-Za-z]{2}[0-9a-fA-F]{32}")
# A phone number's shape: seven or more digits, maybe grouped (an error code has five).
_NUMBER = re.compile(r"\+?\d[\d ().-]{5,}\d")
_CODE = re.compile(r"\b(\d{5})\b")


def _sid(value: str) -> str:
    """A Twilio SID as it may be logged (CA…, MZ…), or "?" for anything else."""
    return value if _SID.fullmatch(value) else "?"


def stream_error(form: dict[str, str]) -> tuple[str, str]:
    """A stream-error's code and message: Twilio documents ``StreamError``, a message,
    which names the error's five-digit code (e.g. 31920); an ``ErrorCode`` parameter is
    read too, should one come. The message is cut to 300 characters, and anything
    shaped like a phone number in it is masked."""
    message = " ".join(form.get("StreamError", "").split())[:300]
    message = _NUMBER.sub("…", message)
    code = form.get("ErrorCode", "")
    if not code.isdigit():
        found = _CODE.search(message)
        code = found.group(1) if found else ""
    return code[:8], message


TWILIO = web.AppKey("twilio", TwilioGateway)
