"""A Twilio call as the tests play it against a real relay: the voice webhook's form
and the stream's messages in the shapes Twilio documents
(https://www.twilio.com/docs/voice/media-streams/websocket-messages), signed with
twilio-python's RequestValidator, and `TwilioCall`, a fake Twilio on one
bidirectional stream that collects the media the relay sends back and echoes marks as
Twilio does: when the media before them has "played" in real time
(``relay/rehearsal/twilio_playback.py``), at once on a clear. The music's spectrum and
the fake billboard are ``phone_rtp.py``'s, shared with the SIP tests."""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import numpy as np
import orjson
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from relay.gateways.dtmf import ULAW_TO_PCM
from relay.rehearsal.twilio_playback import Playback, read_sent

from .phone_rtp import Audio, rms_dbfs
from .relay import ANSWER_S, RunningRelay

PUBLIC = "https://jam.example.org"
TOKEN = "12345678901234567890123456789012"
NUMBER = "+14155550112"
KEY = "test-pseudonym-key"
CALL_SID = "CA5ad4b3a2c1d0e9f8a7b6c5d4e3f2a1b0"
STREAM_SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
ACCOUNT_SID = "AC25e16e9a716a4a1786a7c83f58e30482"


def webhook_form(number: str = NUMBER, call_sid: str = CALL_SID) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": "+14155550100",
        "Caller": number,
        "Direction": "inbound",
        "From": number,
        "FromCountry": "US",
        "To": "+14155550100",
    }


def start_message(
    params: dict[str, str], call_sid: str = CALL_SID, stream_sid: str = STREAM_SID
) -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT_SID,
            "streamSid": stream_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": params,
        },
        "streamSid": stream_sid,
    }


def samples(ulaw: bytes) -> Audio:
    """G.711 μ-law as samples within ±1."""
    return ULAW_TO_PCM[np.frombuffer(ulaw, dtype=np.uint8)].astype(np.float64) / 32768


class TwilioCall:
    """One call through Twilio to `relay`: `dial` posts the signed voice webhook, opens
    the stream it names and sends ``connected`` and ``start``; from then on the relay's
    ``media`` are collected (`audio`, `arrivals` on the loop's clock) and its marks
    echoed when played, unless `echo_marks` is turned off (a Twilio that stops
    answering). `speed` < 1 plays slower than real time (a backlog that grows)."""

    def __init__(
        self,
        relay: RunningRelay,
        token: str = TOKEN,
        number: str = NUMBER,
        call_sid: str = CALL_SID,
        stream_sid: str = STREAM_SID,
        speed: float = 1.0,
    ) -> None:
        self.relay = relay
        self.token = token
        self.number = number
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.playback = Playback(speed=speed)
        self.echo_marks = True
        self.params: dict[str, str] = {}
        self.frames: list[bytes] = []  # each media's μ-law, in order
        self.arrivals: list[float] = []
        self.marks_echoed: list[str] = []
        self.clears: list[float] = []
        self.unreadable = 0  # messages Twilio would not take, or for another stream
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._seq = 1
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def caller(self) -> str:
        return self.params["caller"]

    @property
    def audio(self) -> bytes:
        """The μ-law of every media received, in order."""
        return b"".join(self.frames)

    def heard(self) -> Audio:
        """What the caller heard, as samples within ±1."""
        return samples(self.audio)

    def onset(self, dbfs: float = -45.0) -> int | None:
        """The index of the first media louder than `dbfs` (RMS), if any: when a
        note was first heard."""
        return next((i for i, f in enumerate(self.frames) if rms_dbfs(samples(f)) > dbfs), None)

    def pacing(self) -> tuple[float, float]:
        """The median and 99th percentile of the gaps between media, in ms."""
        gaps = np.diff(self.arrivals) * 1000
        if not gaps.size:
            return (0.0, 0.0)
        return (float(np.percentile(gaps, 50)), float(np.percentile(gaps, 99)))

    def _signed(self, url: str, params: dict[str, str]) -> dict[str, str]:
        if not self.token:
            return {}
        return {"X-Twilio-Signature": RequestValidator(self.token).compute_signature(url, params)}

    async def answer(self) -> dict[str, str]:
        """The signed voice webhook; the TwiML's stream `<Parameter>`s."""
        form = webhook_form(self.number, self.call_sid)
        relay = self.relay
        headers = self._signed(f"{PUBLIC}/twilio/voice", form)
        async with relay.session.post(f"{relay.url}/twilio/voice", data=form, headers=headers) as r:
            assert r.status == 200, await r.text()
            stream = ET.fromstring(await r.read()).find("./Connect/Stream")
        assert stream is not None, "no <Connect><Stream> in the TwiML"
        self.params = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
        return self.params

    def stream_headers(self) -> dict[str, str]:
        """The stream upgrade's signature, over the TwiML's wss:// URL."""
        return self._signed(f"{PUBLIC.replace('https', 'wss')}/twilio/stream", {})

    def opening(self) -> list[dict[str, Any]]:
        """Twilio's first two messages on the stream: ``connected`` and ``start``."""
        connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        return [connected, start_message(self.params, self.call_sid, self.stream_sid)]

    async def dial(self) -> TwilioCall:
        await self.answer()
        self.ws = await self.relay.connect("/twilio/stream", headers=self.stream_headers())
        for message in self.opening():
            await self.ws.send_str(orjson.dumps(message).decode())
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read()), loop.create_task(self._echo())]
        return self

    async def send(self, message: dict[str, Any]) -> None:
        """A message as Twilio sends it: its sequenceNumber and the streamSid added."""
        assert self.ws is not None
        self._seq += 1
        message = {**message, "sequenceNumber": str(self._seq), "streamSid": self.stream_sid}
        await self.ws.send_str(orjson.dumps(message).decode())

    async def dtmf(self, digit: str) -> None:
        await self.send({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": digit}})

    async def stop(self) -> None:
        """Twilio's ``stop``, then the socket closes."""
        await self.send(
            {"event": "stop", "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid}}
        )
        await self.close()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def frames_at_least(self, n: int, timeout: float = ANSWER_S) -> None:
        async with asyncio.timeout(timeout):
            while len(self.frames) < n:
                await asyncio.sleep(0.02)

    async def _read(self) -> None:
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        async for msg in self.ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            now = loop.time()
            sent = read_sent(msg.data)
            if sent is None or sent.stream_sid != self.stream_sid:
                self.unreadable += 1
                continue
            if sent.event == "media":
                self.frames.append(sent.audio)
                self.arrivals.append(now)
            elif sent.event == "clear":
                self.clears.append(now)
            await self._answer(self.playback.take(sent, now))

    async def _echo(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.01)
            await self._answer(self.playback.due(loop.time()))

    async def _answer(self, names: list[str]) -> None:
        """Twilio's ``mark`` for each name, unless it has stopped answering."""
        for name in names:
            if self.echo_marks and self.ws is not None and not self.ws.closed:
                self.marks_echoed.append(name)
                await self.send({"event": "mark", "mark": {"name": name}})
