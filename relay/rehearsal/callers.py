"""The crowd's callers, one coroutine each, through one ingress path of the relay,
each speaking exactly what the real thing sends (relay/rehearsal/crowd.py lists them)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import secrets
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from ..contract.channels import state_channel, valid_channel
from ..contract.events import WEB_SOURCE, Digit, Join, Leave, to_data
from ..contract.subscriber import RelayError, V2Subscriber, publish_frame, subscribe_frame
from ..gateways.common import websocket_url
from .plan import CallerPlan, CrowdOptions, fake_numbers
from .scoring import ArrivalTally
from .sip_phone import CallFailed, SipPhones
from .twilio_playback import Playback, read_sent

if TYPE_CHECKING:
    from .fake_ari import FakeAri

log = logging.getLogger("relay.rehearsal.crowd")

FRAME_S: Final = 0.020  # one Twilio media frame: 20 ms of 8 kHz μ-law
FRAME_BYTES: Final = 160
TONE_MS: Final = 80  # a short, firm press (Q.24: ≥ 40 ms must be heard)
SIP_PRESS_MS: Final = 100  # an RFC 4733 event's length, as a phone sends a quick press
ARI_JOIN_TIMEOUT_S: Final = 5.0
CONNECT_TIMEOUT_S: Final = 10.0
SILENCE_B64: Final = base64.b64encode(b"\xff" * FRAME_BYTES).decode()  # μ-law silence
ACCOUNT_SID: Final = "AC" + "0" * 24 + "c70bd0" + "00"  # an obviously fake account
TO_NUMBER: Final = "+15555550100"  # the installation's (fake) number


TWILIO_MISSING: Final = (
    "signing as Twilio needs twilio-python, the independent signer: "
    "pip install 'twilio>=9.13' (or pip install -e '.[test]')"
)


class CallerFailed(Exception):
    """A caller could not get through; `kind` is what the report counts."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def make_fake_ari(options: CrowdOptions) -> FakeAri:
    """The Asterisk stand-in, with the app and ARI user of the relay's [ari] table (so
    the installation's own relay connects to it unchanged)."""
    from .fake_ari import FakeAri  # only an ARI rehearsal needs its server

    return FakeAri(
        app=options.ari_app, username=options.ari_username, password=options.ari_password
    )


async def close_with_reader(
    ws: aiohttp.ClientWebSocketResponse, reader: asyncio.Task[None]
) -> None:
    """A caller's socket is done: close it and stop the task that read it."""
    await ws.close()
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader


def ws_base(http_url: str) -> str:
    """http://host:port/prefix → ws://host:port/prefix (https → wss)."""
    return websocket_url(http_url.rstrip("/"))


def on_relay(stream_url: str, relay: str) -> str:
    """The TwiML's stream URL with the scheme and host of the relay we were told to
    reach (the TwiML names the public address; a rehearsal may go round it)."""
    stream = urlsplit(stream_url)
    base = urlsplit(ws_base(relay))
    return urlunsplit(stream._replace(scheme=base.scheme, netloc=base.netloc))


def read_twiml(body: bytes) -> tuple[str, dict[str, str]]:
    """The `<Connect><Stream url>` and its `<Parameter>`s of a voice webhook's answer;
    raises `CallerFailed` when it has none."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise CallerFailed("voice webhook: not TwiML") from None
    stream = root.find("./Connect/Stream")
    url = stream.get("url") if stream is not None else None
    if stream is None or not url:
        raise CallerFailed("voice webhook: no <Connect><Stream url>")
    params = {
        p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter") if p.get("name")
    }
    return url, params


class Callers:
    """The crowd's callers for one run: the session, the clock, the tally, and one
    coroutine per caller (`play`) through the path of `options.via`."""

    def __init__(
        self,
        options: CrowdOptions,
        session: aiohttp.ClientSession,
        tally: ArrivalTally,
        stop: asyncio.Event,
        seed: int,
        say: Callable[[str], None] = lambda line: None,
        numbers: Sequence[str] | None = None,
    ) -> None:
        self.options = options
        self.say = say
        self._hinted: set[str] = set()
        self.session = session
        self.tally = tally
        self.stop = stop
        self.t0 = self.now()
        self.numbers = (
            list(numbers)
            if numbers is not None
            else fake_numbers(options.callers, random.Random(seed ^ 0x5EED))
        )
        self.in_call = 0
        self.media_lag = 0.0
        self.music_frames = 0  # media the relay sent back to Twilio callers
        self.music_clears = 0
        self.ari: FakeAri | None = None
        self.ari_lock = asyncio.Lock()
        self.sip: SipPhones | None = None
        self._tones: dict[str, list[str]] = {}
        self.stream_signed = ""  # the last stream URL signed, for a refusal's hint

    def now(self) -> float:
        # Not loop.time(): uvloop's is cached per loop turn, in whole milliseconds.
        return time.monotonic()

    async def sleep_until(self, when: float) -> bool:
        """Sleep until `when` (time.monotonic()); False when the crowd is being stopped."""
        while not self.stop.is_set():
            delay = when - self.now()
            if delay <= 0:
                return True
            await asyncio.sleep(min(delay, 0.25))
        return False

    async def play(self, plan: CallerPlan) -> None:
        if not await self.sleep_until(self.t0 + plan.start):
            return
        via = self.options.via
        self.in_call += 1
        try:
            if via == "ws":
                await self.keypad(plan)
            elif via == "ari":
                await self.ari_call(plan)
            elif via == "sip":
                await self.sip_call(plan)
            else:
                await self.twilio_call(plan, audio=via == "twilio-audio")
        except CallerFailed as exc:
            self.tally.fail(plan.index, exc.kind)
            self.hint(exc.kind)
        except aiohttp.WSServerHandshakeError as exc:
            self.tally.fail(plan.index, f"stream refused ({exc.status})")
            self.hint(f"stream refused ({exc.status})")
        except (aiohttp.ClientError, OSError) as exc:
            self.tally.fail(plan.index, f"connection failed ({type(exc).__name__})")
        except TimeoutError:
            self.tally.fail(plan.index, "timed out")
        except Exception:  # our bug: show it, let the others play on
            log.exception("caller %d failed", plan.index)
            self.tally.fail(plan.index, "crowd bug (see the log)")
        finally:
            self.in_call -= 1

    def hint(self, kind: str) -> None:
        """Once per run, what to check when a caller fails this way."""
        o = self.options
        hints = {
            "voice webhook refused (403: signature)": (
                "the relay refused the webhook's X-Twilio-Signature: is --twilio-token its "
                f"[twilio] auth_token, and {o.public_url or o.relay!r} (--public-url) its "
                "public_url?"
            ),
            "voice webhook answered 404": "the relay has no /twilio/voice: is [twilio] configured?",
            "stream refused (403)": (
                "the relay refused the stream upgrade's X-Twilio-Signature, which the crowd "
                f"signed with twilio-python over {self.stream_signed or 'the TwiML stream URL'} "
                "with no parameters (the gateway's assumption of what Twilio signs, as the "
                "crowd's); the relay's log says which URLs it tried and what it received"
            ),
            TWILIO_MISSING: TWILIO_MISSING,
            "session refused (429 rate_limited)": (
                "the relay gives one address at most [relay] sessions_per_minute new keypad "
                "sessions (default 120): raise it for a rehearsal crowd from one machine"
            ),
        }
        text = hints.get(kind)
        if text and kind not in self._hinted:
            self._hinted.add(kind)
            self.say(text)

    async def read_replies(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read what the relay says to a caller (errors are counted); reading also
        answers the relay's heartbeat pings."""
        replies = V2Subscriber((), loads=orjson.loads)
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            for reply in replies.receive_data(msg.data):
                if isinstance(reply, RelayError):
                    self.tally.error(f"relay error {reply.code}")

    async def read_music(
        self, ws: aiohttp.ClientWebSocketResponse, playback: Playback, echoes: list[str]
    ) -> None:
        """What the relay sends a Twilio call (the phone music: ``media``, ``mark``,
        ``clear``), taken as Twilio does (twilio_playback.py) and counted; the marks to
        echo at once (a clear's) go to `echoes`. Reading also answers heartbeats."""
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            sent = read_sent(msg.data)
            if sent is None:
                self.tally.error("twilio: a message Twilio would not take")
                continue
            echoes += playback.take(sent, self.now())
            if sent.event == "media":
                self.music_frames += 1
            elif sent.event == "clear":
                self.music_clears += 1

    # -- ws: a browser keypad --

    async def keypad(self, plan: CallerPlan) -> None:
        o = self.options
        # keypad.js: a caller session from the relay first; the relay stamps its caller
        # on everything the socket publishes.
        async with self.session.post(
            o.relay.rstrip("/") + "/session", json={"channel": o.channel}
        ) as resp:
            answer = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(answer, dict):
                code = answer.get("code") if isinstance(answer, dict) else None
                raise CallerFailed(f"session refused ({resp.status} {code})")
        token, caller = str(answer["session"]), str(answer["caller"])
        log_ = self.tally.add_caller(caller, plan.index)
        ws = await self.session.ws_connect(ws_base(o.relay) + "/ws", autoping=True)
        reader = asyncio.create_task(self.read_replies(ws))
        try:

            async def publish(data: dict[str, Any]) -> None:
                frame = publish_frame(o.channel, data, session=token)
                await ws.send_str(orjson.dumps(frame).decode())

            # keypad.js: subscribe to CHANNEL:state before joining, so the billboard's
            # answer to the join reaches the caller. The relay stamps the session's
            # caller on every event, whatever it says.
            state = state_channel(o.channel)
            if valid_channel(state):
                await ws.send_str(orjson.dumps(subscribe_frame(state)).decode())
            await publish(to_data(Join(caller, WEB_SOURCE)))
            began = self.now()
            for press in plan.presses:
                if not await self.sleep_until(began + press.at):
                    break
                if ws.closed:
                    raise CallerFailed("keypad socket closed by the relay")
                self.tally.sent(caller, press.key, self.now())
                await publish(to_data(Digit(caller, press.key, WEB_SOURCE)))
            await self.sleep_until(began + plan.hang_up)
            # keypad.js on pagehide: a best-effort leave, then the socket goes.
            await publish(to_data(Leave(caller, "closed")))
            log_.ended = True
        finally:
            await close_with_reader(ws, reader)

    # -- twilio: a phone through Twilio Media Streams --

    def _signed(self, url: str, params: dict[str, str] | None = None) -> dict[str, str]:
        """The headers Twilio would send with a request to `url` with POST `params`:
        X-Twilio-Signature made by twilio-python's RequestValidator, never by the
        gateway's own code (so a wrong assumption there fails the rehearsal), with the
        auth token (HMAC_SHA1) or a shared key (HMAC_SHA256, named in the settings
        header)."""
        o = self.options
        if not (o.twilio_token or o.twilio_shared_key):
            return {}
        try:
            from twilio.request_validator import (  # type: ignore[import-untyped]
                RequestValidator,
            )
        except ImportError:
            raise CallerFailed(TWILIO_MISSING) from None
        if o.twilio_shared_key:
            key_id, _, secret = o.twilio_shared_key.partition(":")
            signature = RequestValidator(secret).compute_signature(
                url, params or {}, algorithm="HMAC_SHA256"
            )
            return {
                "X-Twilio-Signature": signature,
                "X-Twilio-Webhooks-Signature-Settings": f"key={key_id},algorithm=HMAC_SHA256",
            }
        return {
            "X-Twilio-Signature": RequestValidator(o.twilio_token).compute_signature(
                url, params or {}
            )
        }

    def tone_frames(self, key: str) -> list[str]:
        """A press as the phone's audio: base64 20 ms μ-law frames of the key's tone."""
        frames = self._tones.get(key)
        if frames is None:
            from ..gateways.dtmf import dtmf_tone, ulaw_encode

            ulaw = ulaw_encode(dtmf_tone(key, TONE_MS))
            frames = [
                base64.b64encode(ulaw[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")).decode()
                for i in range(0, len(ulaw), FRAME_BYTES)
            ]
            self._tones[key] = frames
        return frames

    async def twilio_call(self, plan: CallerPlan, audio: bool) -> None:
        o = self.options
        number = self.numbers[plan.index]
        call_sid = "CA" + secrets.token_hex(16)
        stream_sid = "MZ" + secrets.token_hex(16)
        # The voice webhook's form, as Twilio posts it for an incoming call.
        form = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "ringing",
            "Called": TO_NUMBER,
            "Caller": number,
            "Direction": "inbound",
            "From": number,
            "FromCountry": "US",
            "To": TO_NUMBER,
        }
        public = (o.public_url or o.relay).rstrip("/")
        headers = self._signed(public + "/twilio/voice", form)
        async with self.session.post(
            o.relay.rstrip("/") + "/twilio/voice", data=form, headers=headers
        ) as resp:
            body = await resp.read()
            if resp.status == 403:
                raise CallerFailed("voice webhook refused (403: signature)")
            if resp.status != 200:
                raise CallerFailed(f"voice webhook answered {resp.status}")
        stream_url, params = read_twiml(body)
        caller = params.get("caller")
        if not caller:
            raise CallerFailed('voice webhook: no <Parameter name="caller">')
        log_ = self.tally.add_caller(caller, plan.index)
        # An assumption (the gateway makes it too, relay/gateways/twilio.py): Twilio
        # signs the upgrade over the TwiML's wss:// URL, with no parameters.
        self.stream_signed = stream_url
        ws = await self.session.ws_connect(
            on_relay(stream_url, o.relay), headers=self._signed(stream_url), autoping=True
        )
        playback = Playback()  # the music the relay sends back, "played" as Twilio does
        echoes: list[str] = []
        reader = asyncio.create_task(self.read_music(ws, playback, echoes))
        seq = 0

        async def send(msg: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            msg["sequenceNumber"] = str(seq)
            msg["streamSid"] = stream_sid
            await ws.send_str(orjson.dumps(msg).decode())

        try:
            await ws.send_str(
                orjson.dumps(
                    {"event": "connected", "protocol": "Call", "version": "1.0.0"}
                ).decode()
            )
            await send(
                {
                    "event": "start",
                    "start": {
                        "streamSid": stream_sid,
                        "accountSid": ACCOUNT_SID,
                        "callSid": call_sid,
                        "tracks": ["inbound"],
                        "customParameters": params,
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": 8000,
                            "channels": 1,
                        },
                    },
                }
            )
            began = self.now()
            presses = deque(plan.presses)
            tone: deque[str] = deque()
            chunk = 0
            # Twilio sends a frame every 20 ms, in real time; a press rides between
            # frames as a `dtmf` message, or (audio) as the next frames' sound.
            while (chunk * FRAME_S < plan.hang_up or tone) and not self.stop.is_set():
                due = began + chunk * FRAME_S
                await self.sleep_until(due)
                late = self.now() - due
                if late > self.media_lag:
                    self.media_lag = late
                if ws.closed:
                    raise CallerFailed("stream closed by the relay")
                while presses and presses[0].at <= chunk * FRAME_S and not tone:
                    key = presses.popleft().key
                    self.tally.sent(caller, key, self.now())
                    if audio:
                        tone.extend(self.tone_frames(key))
                    else:
                        await send(
                            {
                                "event": "dtmf",
                                "dtmf": {"track": "inbound_track", "digit": key},
                            }
                        )
                # Twilio's mark for each one whose audio has played (or was cleared).
                for name in [*echoes, *playback.due(self.now())]:
                    await send({"event": "mark", "mark": {"name": name}})
                echoes.clear()
                payload = tone.popleft() if tone else SILENCE_B64
                await send(
                    {
                        "event": "media",
                        "media": {
                            "track": "inbound",
                            "chunk": str(chunk + 1),
                            "timestamp": str(chunk * 20),
                            "payload": payload,
                        },
                    }
                )
                chunk += 1
            await send({"event": "stop", "stop": {"accountSid": ACCOUNT_SID, "callSid": call_sid}})
            log_.ended = True
        finally:
            await close_with_reader(ws, reader)

    # -- ari: a phone through Asterisk --

    async def ari_call(self, plan: CallerPlan) -> None:
        ari = self.ari
        assert ari is not None
        number = self.numbers[plan.index]
        async with self.ari_lock:
            # One call start at a time: the next ARI join on the channel is this call's.
            self.tally.joins_to_claim.clear()
            channel_id = await ari.call(number)
            try:
                caller = await self.claim_join() if self.options.check else f"ari-{plan.index}"
            except CallerFailed:
                await ari.hang_up(channel_id)  # leave no call behind on the relay
                raise
        log_ = self.tally.add_caller(caller, plan.index)
        if self.options.check:
            log_.joins += 1  # the join that was claimed
        try:
            await ari.answered(channel_id, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise CallerFailed("ari: the relay never answered the channel") from None
        began = self.now()
        try:
            for press in plan.presses:
                if not await self.sleep_until(began + press.at):
                    break
                self.tally.sent(caller, press.key, self.now())
                await ari.press(channel_id, press.key)
            await self.sleep_until(began + plan.hang_up)
        finally:
            await ari.hang_up(channel_id)
            log_.ended = True

    async def sip_call(self, plan: CallerPlan) -> None:
        """A phone on a SIP trunk: INVITE, keys as RFC 4733 events, BYE."""
        assert self.sip is not None
        async with self.ari_lock:
            # One call start at a time: the next SIP join on the channel is this call's.
            self.tally.joins_to_claim.clear()
            try:
                call = await self.sip.call(self.numbers[plan.index])
            except CallFailed as exc:
                raise CallerFailed(str(exc)) from None
            try:
                caller = await self.claim_join() if self.options.check else f"sip-{plan.index}"
            except CallerFailed:
                await call.hang_up()
                raise
        log_ = self.tally.add_caller(caller, plan.index)
        if self.options.check:
            log_.joins += 1  # the join that was claimed
        began = self.now()
        try:
            for press in plan.presses:
                if not await self.sleep_until(began + press.at) or call.ended.is_set():
                    break
                self.tally.sent(caller, press.key, self.now())
                await call.press(press.key, duration_ms=SIP_PRESS_MS)
            await self.sleep_until(began + plan.hang_up)
        finally:
            await call.hang_up()
            log_.ended = True

    async def claim_join(self) -> str:
        deadline = self.now() + ARI_JOIN_TIMEOUT_S
        while not self.tally.joins_to_claim:
            self.tally.changed.clear()
            left = deadline - self.now()
            if left <= 0:
                raise CallerFailed("ari: no join on the channel for the call")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.tally.changed.wait(), left)
        return self.tally.joins_to_claim.popleft()[0]
