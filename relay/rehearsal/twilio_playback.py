"""Twilio's side of a bidirectional Media Stream's audio, as a stand-in plays it: what
the relay sends back (``media``, ``mark``, ``clear``) read, the media "played" in real
time, and each mark due back when the audio before it has played — the behaviour
https://www.twilio.com/docs/voice/media-streams/websocket-messages documents: media
is buffered and played in the order received, a mark is echoed with its name once
the media before it has played, and a clear drops the buffered audio and echoes the
marks still waiting at once. Pure: the clock is passed in.

The rehearsal crowd's Twilio callers use it, and so do the tests' fake Twilio
(``tests/support/twilio.py``).
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from dataclasses import dataclass, field

import orjson

RATE = 8000  # audio/x-mulaw, 8 kHz: one byte a sample


@dataclass(slots=True)
class Sent:
    """One message the relay sent, read: its event, the stream it names, and the
    μ-law of a media or the name of a mark."""

    event: str
    stream_sid: str
    audio: bytes = b""
    name: str = ""


def read_sent(text: str | bytes) -> Sent | None:
    """A message from the relay to Twilio, or None when it is not one Twilio takes (a
    stand-in counts those)."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(msg, dict) or not isinstance(sid := msg.get("streamSid"), str):
        return None
    event = msg.get("event")
    if event == "clear":
        return Sent("clear", sid)
    body = msg.get(event) if isinstance(event, str) else None
    if event == "media" and isinstance(body, dict) and isinstance(body.get("payload"), str):
        try:
            return Sent("media", sid, audio=base64.b64decode(body["payload"], validate=True))
        except (binascii.Error, ValueError):
            return None
    if event == "mark" and isinstance(body, dict) and isinstance(body.get("name"), str):
        return Sent("mark", sid, name=body["name"])
    return None


@dataclass
class Playback:
    """The call's outbound audio buffer at Twilio. `speed` below 1 plays slower than
    real time: a stand-in whose backlog grows."""

    speed: float = 1.0
    playhead: float | None = None  # when everything received will have played
    frames: int = 0
    samples: int = 0
    clears: int = 0
    _marks: deque[tuple[float, str]] = field(default_factory=deque)

    def take(self, sent: Sent, now: float) -> list[str]:
        """Take one message at `now`; returns the names of marks to echo at once."""
        if sent.event == "media":
            start = now if self.playhead is None else max(self.playhead, now)
            self.playhead = start + len(sent.audio) / RATE / self.speed
            self.frames += 1
            self.samples += len(sent.audio)
        elif sent.event == "mark":
            self._marks.append((self.backlog(now) + now, sent.name))
        elif sent.event == "clear":
            self.clears += 1
            self.playhead = now
            names = [name for _, name in self._marks]
            self._marks.clear()
            return names
        return self.due(now)

    def backlog(self, now: float) -> float:
        """Seconds of audio received and not yet played at `now`."""
        return 0.0 if self.playhead is None else max(0.0, self.playhead - now)

    def due(self, now: float) -> list[str]:
        """The marks whose audio has played by `now`, to echo, in order."""
        names = []
        while self._marks and self._marks[0][0] <= now:
            names.append(self._marks.popleft()[1])
        return names
