"""The music down the phone line, end to end: a real billboard (`Show`, its engine,
scheduler and phone threads, headless: no screen, no sound card) linked to a real
relay (``tests/conftest.py`` `start_relay`); callers publishing keys as a gateway or
IVR does; what one call hears collected from the relay's `PhoneFeed` as a voice
gateway would take it; and the listening: μ-law decoded, spectra, note onsets.

For the Twilio and SIP end-to-end tests: `relay_and_billboard(start_relay,
relay_settings={"twilio": …})` starts both; the call itself presses the keys (Twilio
``dtmf`` frames, SIPp's RFC 4733 events) instead of `Caller`, its audio is collected
from the gateway's own wire instead of `Listener` (`decode` its μ-law as it came, with
the arrival time of each 20 ms), and read with `level_at`, `peaks_hz`, `onset`,
`apart` and `balance_db`; `NoteProbe` gives the speakers' side of the delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt
import orjson

from billboard.config import BillboardConfig
from billboard.engine.events import NoteOff, NoteOn
from billboard.engine.tracks import DEFAULT_TRACKS, TrackSpec
from billboard.show import Options, Show
from relay.config import RelayConfig
from relay.gateways.dtmf import ulaw_decode
from relay.phone_feed import PhoneFeed
from tests.support.phone_rtp import level_at, midi_hz
from tests.support.relay import BILLBOARD, PUBLISHER, RunningRelay, StartRelay

RATE = 8000
FRAME = 160
Audio = npt.NDArray[np.float64]
SOUNDS = Path(__file__).resolve().parents[2] / "sounds"
# Two pitched tracks whose notes sit inside the phone's band: the first caller to join
# plays the lead, the second the pluck.
LEAD_AND_PLUCK: tuple[TrackSpec, ...] = tuple(
    t for t in DEFAULT_TRACKS if t.name in ("lead", "pluck")
)


# -- the billboard ------------------------------------------------------------------


class NoteProbe:
    """A billboard output beside the speakers: each note with the moment the scheduler
    handed it out (the engine clock, `time.monotonic`): the speakers' side of a figure."""

    name = "probe"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.played: list[tuple[float, NoteOn]] = []

    def note_on(self, note: NoteOn) -> None:
        with self._lock:
            self.played.append((time.monotonic(), note))

    def note_off(self, note: NoteOff) -> None:
        pass

    def panic(self) -> None:
        pass

    def close(self) -> None:
        pass

    def ons(self, track: str | None = None) -> list[tuple[float, NoteOn]]:
        with self._lock:
            return [(t, n) for t, n in self.played if track is None or n.track == track]


@contextlib.asynccontextmanager
async def linked_billboard(
    relay: RunningRelay, probe: NoteProbe | None = None, **settings: Any
) -> AsyncIterator[Show]:
    """A headless billboard (no screen, no speakers) linked to `relay` with the billboard
    token, as ``python -m billboard --relay ws://…/ws`` runs; `settings` are
    `BillboardConfig`'s (default: the lead and the pluck, no groove bed). Yields once
    its phone audio link is up; stopped on the way out."""
    settings.setdefault("tracks", LEAD_AND_PLUCK)
    settings.setdefault("style", "none")
    config = BillboardConfig(relay=relay.ws_url, token=BILLBOARD, sound=False, **settings)
    show = Show(
        config,
        RelayConfig(billboard_token=BILLBOARD),
        Options(headless=True, sounds_dir=SOUNDS),
        sinks=[probe] if probe is not None else [],
    )
    await asyncio.to_thread(show.start_background)
    try:
        if show.phone is not None:
            await wait_until(lambda: show.phone_link is not None and show.phone_link.connected)
        await wait_until(lambda: show.link is not None and show.link.status == "connected")
        yield show
    finally:
        await asyncio.to_thread(show.stop)


@contextlib.asynccontextmanager
async def relay_and_billboard(
    start_relay: StartRelay,
    probe: NoteProbe | None = None,
    relay_settings: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[tuple[RunningRelay, Show]]:
    """A relay (``start_relay``'s keywords in `relay_settings`: ``twilio=…``, ``sip=…``
    for a gateway's test) and a billboard linked to it (`linked_billboard`)."""
    relay = await start_relay(**{"rate": 0, **(relay_settings or {})})
    async with linked_billboard(relay, probe, **settings) as show:
        yield relay, show


async def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll `check` until it holds; fail after `timeout` (sized for a busy machine)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# -- the callers --------------------------------------------------------------------


class Caller:
    """A caller publishing to the relay as a voice gateway or an IVR does (the
    publisher token): `join`, then `press` keys, each with the moment it was sent."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, caller: str) -> None:
        self.ws = ws
        self.caller = caller
        self.pressed: list[tuple[float, str]] = []  # (time.monotonic() when sent, key)

    @classmethod
    async def dial(cls, relay: RunningRelay, caller: str, source: str = "twilio") -> Caller:
        ws = await relay.session.ws_connect(f"{relay.ws_url}?token={PUBLISHER}")
        me = cls(ws, caller)
        await me.publish({"event": "join", "caller": caller, "source": source})
        return me

    async def publish(self, data: dict[str, Any]) -> None:
        frame = {"type": "publisher", "id": "dialjam", "data": data}
        await self.ws.send_str(orjson.dumps(frame).decode())

    async def press(self, key: str) -> None:
        self.pressed.append((time.monotonic(), key))
        await self.publish({"event": "digit", "caller": self.caller, "digit": key})

    async def hang_up(self) -> None:
        await self.publish({"event": "leave", "caller": self.caller, "reason": "hangup"})
        await self.ws.close()


# -- what a call hears --------------------------------------------------------------


@dataclass
class Listener:
    """One call's frames from the relay's phone feed, as a gateway gets them: each
    20 ms tick's 160 bytes of μ-law (None: nothing to play), with when it came."""

    caller: str
    ticks: list[tuple[float, bytes | None]] = field(default_factory=list)
    stop: Callable[[], None] = lambda: None

    @classmethod
    def on(cls, feed: PhoneFeed, caller: str) -> Listener:
        me = cls(caller)
        me.stop = feed.listen(caller, me.play)
        return me

    def play(self, frame: bytes | None) -> None:
        self.ticks.append((time.monotonic(), frame))

    def heard(self) -> int:
        return sum(1 for _, frame in self.ticks if frame is not None)

    def audio(self) -> Audio:
        """Everything played, a tick's silence where it had nothing."""
        return decode([f if f is not None else b"\xff" * FRAME for _, f in self.ticks])

    def time_of(self, sample: int) -> float:
        """When `sample` of `audio()` left the relay (time.monotonic)."""
        return self.ticks[sample // FRAME][0] + (sample % FRAME) / RATE

    def sample_at(self, moment: float) -> int:
        """The first sample of `audio()` played at or after `moment`."""
        for n, (at, _) in enumerate(self.ticks):
            if at >= moment:
                return n * FRAME
        return len(self.ticks) * FRAME


def decode(frames: Sequence[bytes]) -> Audio:
    """G.711 μ-law frames → samples in ±1."""
    return ulaw_decode(b"".join(frames)).astype(np.float64) / 32768


def peaks_hz(x: Audio, count: int = 3, apart_hz: float = 30.0) -> list[float]:
    """The frequencies of `x`'s `count` strongest spectral peaks, strongest first, each
    at least `apart_hz` from a stronger one (Hann window, 8× zero-padded)."""
    size = 8 * (1 << max(0, len(x) - 1).bit_length())
    power = np.abs(np.fft.rfft(x * np.hanning(len(x)), size)) ** 2
    freqs = np.fft.rfftfreq(size, 1 / RATE)
    found: list[float] = []
    for index in np.argsort(power)[::-1]:
        hz = float(freqs[index])
        if all(abs(hz - other) >= apart_hz for other in found):
            found.append(hz)
            if len(found) == count:
                break
    return found


def noise_floor(x: Audio) -> float:
    """The median power of a bin of `x`'s spectrum: what "nothing there" measures."""
    return float(np.median(np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2))


def onset(x: Audio, after: int, threshold: float = 0.02, quiet_s: float = 0.05) -> int | None:
    """The first sample from `after` over `threshold` (±1 scale), provided the `quiet_s`
    before `after` stayed under a quarter of it (else a note still ringing would hide
    the new one); None when there is none."""
    before = x[max(0, after - round(quiet_s * RATE)) : after]
    if before.size and float(np.max(np.abs(before))) > threshold / 4:
        return None
    loud = np.flatnonzero(np.abs(x[after:]) > threshold)
    return int(after + loud[0]) if loud.size else None


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def apart(notes: set[int], others: set[int], harmonics: int = 6, width: float = 20.0) -> set[float]:
    """The fundamentals (Hz) of `notes` that no harmonic (1 … `harmonics`) of `others`
    comes within `width` Hz of: where one part's level is read without the other's
    (``apart(a, b)`` for part a, ``apart(b, a)`` for part b)."""
    theirs = [k * midi_hz(n) for n in others for k in range(1, harmonics + 1)]
    return {hz for hz in map(midi_hz, notes) if all(abs(hz - h) >= width for h in theirs)}


def balance_db(x: Audio, part: set[float], other: set[float]) -> float:
    """How far `part`'s fundamentals stand over `other`'s in `x`, in dB."""
    mine = sum(level_at(x, hz) for hz in part)
    return float(10 * np.log10(mine / sum(level_at(x, hz) for hz in other)))
