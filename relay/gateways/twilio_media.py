"""The music down a Twilio call: the relay's phone mix (``relay/phone_feed.py``) sent
back on the call's bidirectional Media Stream, 20 ms at a time.

Twilio's messages to it, as documented at
https://www.twilio.com/docs/voice/media-streams/websocket-messages ("Send messages to
Twilio"; bidirectional streams only, i.e. ``<Connect><Stream>``, the only kind the
gateway's TwiML opens):

- ``{"event":"media","streamSid":SID,"media":{"payload":B64}}``: base64 ``audio/x-mulaw``
  at 8 kHz; Twilio buffers what it is sent and plays it in the order received.
- ``{"event":"mark","streamSid":SID,"mark":{"name":NAME}}``: after media, so that
  Twilio answers with a ``mark`` of the same name when the media before it has played.
- ``{"event":"clear","streamSid":SID}``: Twilio drops the audio it holds and answers
  the marks still waiting.

What this module does with them:

- Every tick of the phone feed's pacer (20 ms), `MediaOut.play` queues the caller's
  160 bytes as one ``media`` message, nothing when there is nothing to play. The queue
  is this stream's alone and bounded (`QUEUE_FRAMES`, 200 ms): when the socket is slow
  (its transport holding over `TRANSPORT_BYTES` unsent, past a kernel buffer held to
  `SEND_BUFFER`) the writer waits and the oldest frame goes (counted), so a slow peer
  never builds minutes of audio in the relay, and one stream's writer never holds up
  another's, nor the pacer.
- Every `MARK_EVERY` frames (1 s) a mark follows the media. Twilio plays in real
  time, so the time from writing a mark to its echo is how much audio Twilio held
  ahead of it: its **playback backlog**, the latency the caller hears on top of ours
  (and a network round trip). Each echo is a sample for /healthz and /metrics
  (``twilio`` → ``backlog_ms_p50``, ``backlog_ms_p99``).
- When the backlog passes `BACKLOG_BOUND_S` (an echo that took longer, or a mark
  that has waited longer without one), a ``clear`` goes out ahead of the queued
  media: Twilio drops its backlog and the music is live again (``clears`` counted).
  Marks are only trusted on a stream once one has come back; the marks waiting at a
  clear are forgotten (their echoes, which the clear brings, are no samples); and a
  peer that keeps not echoing is cleared less and less often (doubling from
  `MARK_EVERY` frames to `CLEAR_BACKOFF_MAX_S`), never in a storm.

`MediaOut` is pure (the clock is passed in); `MediaWriter` is the aiohttp side: the
stream's own task that writes the queue to the socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aiohttp import web

from ..phone_audio import FRAME_BYTES, FRAME_S
from ..phone_feed import PhoneFeed
from ..ratelimit import LogOnce

log = logging.getLogger("relay.twilio")

QUEUE_FRAMES: Final = 10  # 200 ms of media waiting for the socket, at most
# Bytes the socket's transport may hold unsent before the writer stops taking from the
# queue (about 200 ms of media messages): past it the queue drops, not aiohttp's buffer
# growing to its own limit (64 KiB: seconds of audio).
TRANSPORT_BYTES: Final = 4096
# The kernel's send buffer for the stream (socket(7) SO_SNDBUF; Linux doubles it): left
# to autotuning it grows to tcp_wmem's 4 MB, minutes of audio for a peer that stalls.
# 16 KiB holds under a second of media and is still many times the path's bandwidth-
# delay product (20 KB/s). A proxy's buffers beyond are not ours: a burst from there
# shows as backlog, and the clear (which follows it) drops it at Twilio.
SEND_BUFFER: Final = 8192
MARK_EVERY: Final = 50  # frames: a mark each second
BACKLOG_BOUND_S: Final = 0.5
MAX_MARKS: Final = 16  # marks awaiting their echo, at most (the oldest is forgotten)
CLEAR_BACKOFF_MAX_S: Final = 30.0
SAMPLES: Final = 600  # backlog samples kept: the last ten minutes at one a second


@dataclass(slots=True)
class MediaStats:
    """The figures of every stream's music, for the gateway's /healthz."""

    listening: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0  # the oldest of a full queue: the socket was too slow
    marks_sent: int = 0
    marks_echoed: int = 0
    marks_unanswered: int = 0  # forgotten after MAX_MARKS newer ones
    clears: int = 0
    writer_errors: int = 0
    backlog_ms: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES))

    def figures(self) -> dict[str, Any]:
        ordered = sorted(self.backlog_ms)

        def at(share: float) -> float:
            if not ordered:
                return 0.0
            return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 1)

        return {
            "music_listening": self.listening,
            "media_sent": self.frames_sent,
            "media_dropped": self.frames_dropped,
            "marks_sent": self.marks_sent,
            "marks_echoed": self.marks_echoed,
            "marks_unanswered": self.marks_unanswered,
            "clears": self.clears,
            "backlog_ms_p50": at(0.5),
            "backlog_ms_p99": at(0.99),
            "music_errors": self.writer_errors,
        }


class MediaOut:
    """One stream's messages back to Twilio: media queued by `play`, written in order
    through `take`, marks timed by `echoed`. Pure: `now` is any steady clock, seconds."""

    def __init__(
        self,
        stream_sid: str,
        stats: MediaStats,
        bound_s: float = BACKLOG_BOUND_S,
        queue_frames: int = QUEUE_FRAMES,
        mark_every: int = MARK_EVERY,
    ) -> None:
        self._sid = stream_sid
        self.stats = stats
        self.bound_s = bound_s
        self._queue_frames = max(1, queue_frames)
        self._mark_every = max(1, mark_every)
        # (kind, mark name or "", message), kind "media", "mark" or "clear".
        self._queue: deque[tuple[str, str, str]] = deque()
        self._queued_media = 0
        self._frames = 0
        self._marks = 0
        self._sent: dict[str, float] = {}  # mark name: when it was written, in order
        self._trusted = False  # a mark came back on this stream
        self._last_delay = 0.0
        self._quiet_clears = 0  # clears in a row with no echo since
        self._next_clear = 0.0

    def play(self, ulaw: bytes | None, now: float) -> bool:
        """One tick: `ulaw` (160 bytes) to send, or None (nothing: Twilio plays
        silence when its buffer is empty). True when there is something to write."""
        self._check(now)
        if ulaw is not None and len(ulaw) == FRAME_BYTES:
            payload = base64.b64encode(ulaw).decode()
            media = {"payload": payload}
            self._push("media", "", {"event": "media", "streamSid": self._sid, "media": media})
            self._frames += 1
            if self._frames % self._mark_every == 0:
                self._marks += 1
                name = f"dj{self._marks}"
                mark = {"event": "mark", "streamSid": self._sid, "mark": {"name": name}}
                self._push("mark", name, mark)
        return bool(self._queue)

    def take(self, now: float) -> str | None:
        """The next message to write now (a mark's time starts here), or None."""
        if not self._queue:
            return None
        kind, name, text = self._queue.popleft()
        if kind == "media":
            self._queued_media -= 1
            self.stats.frames_sent += 1
        elif kind == "mark":
            self._sent[name] = now
            self.stats.marks_sent += 1
            while len(self._sent) > MAX_MARKS:
                del self._sent[next(iter(self._sent))]
                self.stats.marks_unanswered += 1
        return text

    def echoed(self, name: str, now: float) -> None:
        """Twilio's `mark` named `name` came back at `now`."""
        sent = self._sent.pop(name, None)
        if sent is None:
            return  # one a clear answered, or not ours: no measure of playback
        self._trusted = True
        self._quiet_clears = 0
        self._last_delay = now - sent
        self.stats.marks_echoed += 1
        self.stats.backlog_ms.append(self._last_delay * 1000)

    def backlog_s(self, now: float) -> float:
        """Twilio's backlog as known at `now`: the last echo's delay, or longer when
        the oldest mark has waited longer than that."""
        oldest = next(iter(self._sent.values()), None)
        waited = 0.0 if oldest is None else now - oldest
        return max(self._last_delay, waited)

    def _check(self, now: float) -> None:
        if not self._trusted or now < self._next_clear or self.backlog_s(now) <= self.bound_s:
            return
        if self._queue and self._queue[0][0] == "clear":
            return  # one still waiting for the socket: a second would say nothing more
        self._queue.appendleft(("clear", "", _dumps({"event": "clear", "streamSid": self._sid})))
        self.stats.clears += 1
        self._sent.clear()  # the clear answers them: no measure of playback
        self._last_delay = 0.0
        wait = min(CLEAR_BACKOFF_MAX_S, self._mark_every * FRAME_S * 2**self._quiet_clears)
        self._quiet_clears += 1
        self._next_clear = now + self.bound_s + wait

    def _push(self, kind: str, name: str, message: dict[str, Any]) -> None:
        """Queue a message; past the bound the oldest media (or mark) goes."""
        self._queue.append((kind, name, _dumps(message)))
        self._queued_media += kind == "media"
        limit = self._queue_frames
        while self._queued_media > limit or len(self._queue) > limit + 2:
            # The oldest that is not the clear (only one waits, at the front).
            at = 1 if self._queue[0][0] == "clear" else 0
            dropped = self._queue[at][0]
            del self._queue[at]
            if dropped == "media":
                self._queued_media -= 1
                self.stats.frames_dropped += 1


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


class MediaWriter:
    """The aiohttp side of one stream's music: `play` is the phone feed's sink (it only
    queues), and the stream's own task writes the queue to the socket."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        out: MediaOut,
        clock: Callable[[], float],
        logged: LogOnce,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self._ws = ws
        self._transport = transport  # the socket's: how much is still unsent
        self.out = out
        self._clock = clock
        self._logged = logged
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stop: Callable[[], None] | None = None

    def start(self, feed: PhoneFeed, caller: str) -> None:
        sock = None if self._transport is None else self._transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        self._task = asyncio.get_running_loop().create_task(self._write())
        self._stop = feed.listen(caller, self.play)
        self.out.stats.listening += 1

    def play(self, frame: bytes | None) -> None:
        if self.out.play(frame, self._clock()):
            self._wake.set()

    def echoed(self, name: str, now: float) -> None:
        self.out.echoed(name, now)

    async def close(self) -> None:
        """No more music (the call ended, or was kicked); calling it twice is harmless."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()
            self.out.stats.listening -= 1
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _backed_up(self) -> bool:
        transport = self._transport
        return transport is not None and transport.get_write_buffer_size() > TRANSPORT_BYTES

    async def _write(self) -> None:
        while not self._ws.closed:
            await self._wake.wait()
            self._wake.clear()
            while not self._backed_up() and (text := self.out.take(self._clock())) is not None:
                try:
                    await self._ws.send_str(text)
                except ConnectionError:
                    return  # the socket is closing: the stream's reader ends the call
                except Exception:  # our bug: one message lost, the music goes on
                    self.out.stats.writer_errors += 1
                    if self._logged.allow("music", self._clock()):
                        log.exception("twilio music: a message could not be written")
