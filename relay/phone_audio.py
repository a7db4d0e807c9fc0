"""The music down the phone line, between the billboard and the voice gateways: the
bundle the billboard sends every 20 ms, and the jitter buffer that lets the relay play
it out on its own clock. Pure: bytes and numbers in, bytes and numbers out.

The billboard has the notes, the relay has the calls (and ``relay/`` never imports
``billboard/``), so the billboard renders the phone mixes (``billboard/phone_mix.py``)
and sends each 20 ms frame of all of them as one **bundle** over ``/phone-audio`` (a
WebSocket that only the billboard token opens). A bundle holds the shared mix, one mix
per track-holder (their own part louder) and a caller's own frame while a cue plays
for them, and says which caller hears which; anyone not named hears the shared mix.
Rendered once, sent to many: the relay only picks a mix per call.

The bundle (network byte order)::

    0   4  magic b"DJPA"
    4   1  version (1)
    5   1  mixes: 1..MAX_MIXES
    6   1  callers: 0..MAX_CALLERS
    7   1  0 (reserved)
    8   4  seq: + 1 a frame (wraps at 2**32)
    12  ... mixes × 160 bytes of G.711 μ-law (mix 0: the shared mix)
    ... callers × (1 byte id length 1..64, the caller id, 1 byte mix index)

At 8 track-holders, 9 mixes and 8 names: about 1.6 KB a frame, 80 KB/s.

The jitter budget: frames cross a network from the billboard, so the relay holds
`target` frames (60 ms by default) before it plays, plays one per 20 ms tick of its own
clock, drops the oldest beyond `target + slack` (a burst after a stall, or a billboard
whose clock runs fast) and starts filling again after it runs dry (a stall, or a slow
clock). `stats` counts each case, and the age of every frame played.
"""

from __future__ import annotations

import re
import struct
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

MAGIC: Final = b"DJPA"
VERSION: Final = 1
FRAME_BYTES: Final = 160  # 20 ms of 8 kHz μ-law
FRAME_S: Final = 0.020
MAX_MIXES: Final = 48  # shared + one a track (16 at most) + a cue each for the rest
MAX_CALLERS: Final = 96
MAX_ID: Final = 64
MAX_BUNDLE: Final = 12 + MAX_MIXES * FRAME_BYTES + MAX_CALLERS * (2 + MAX_ID)
SILENCE: Final = b"\xff" * FRAME_BYTES  # μ-law's zero
RESTART_FRAMES: Final = 50  # a frame this far behind the last played: a new feed
_HEAD: Final = struct.Struct("!4sBBBBI")
_ID: Final = re.compile(rb"[A-Za-z0-9_.:-]{1,64}")


class BundleError(ValueError):
    """A bundle that cannot be read: what is wrong, for the log (never the bytes)."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """One 20 ms frame of every phone mix."""

    seq: int
    mixes: tuple[bytes, ...]  # 160 bytes of μ-law each; [0] is the shared mix
    callers: Mapping[str, int]  # caller id: index into mixes

    def for_caller(self, caller: str) -> bytes:
        """What `caller` hears in this frame: their mix, or the shared one."""
        return self.mixes[self.callers.get(caller, 0)]


def encode_bundle(seq: int, mixes: Sequence[bytes], callers: Mapping[str, int]) -> bytes:
    """The bundle of `mixes` (the shared mix first) for `callers` (id: mix index)."""
    if not 1 <= len(mixes) <= MAX_MIXES:
        raise ValueError(f"a bundle holds 1..{MAX_MIXES} mixes, not {len(mixes)}")
    if len(callers) > MAX_CALLERS:
        raise ValueError(f"a bundle names at most {MAX_CALLERS} callers")
    parts = [_HEAD.pack(MAGIC, VERSION, len(mixes), len(callers), 0, seq % 2**32)]
    for mix in mixes:
        if len(mix) != FRAME_BYTES:
            raise ValueError(f"a mix is {FRAME_BYTES} bytes of μ-law, not {len(mix)}")
        parts.append(mix)
    for caller, index in callers.items():
        name = caller.encode()
        if not _ID.fullmatch(name) or not 0 <= index < len(mixes):
            raise ValueError("a caller id is 1-64 of [A-Za-z0-9_.:-] with a mix in the bundle")
        parts += (bytes((len(name),)), name, bytes((index,)))
    return b"".join(parts)


def parse_bundle(data: bytes) -> Bundle:
    """The bundle in `data`, or `BundleError` saying what is wrong (any bytes)."""
    if len(data) < _HEAD.size:
        raise BundleError(f"{len(data)} bytes: shorter than a bundle's head")
    if len(data) > MAX_BUNDLE:
        raise BundleError(f"{len(data)} bytes: over the {MAX_BUNDLE}-byte bound")
    magic, version, n_mixes, n_callers, _, seq = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise BundleError("not a phone-audio bundle (bad magic)")
    if version != VERSION:
        raise BundleError(f"bundle version {version}; this relay reads {VERSION}")
    if not 1 <= n_mixes <= MAX_MIXES or n_callers > MAX_CALLERS:
        raise BundleError(f"{n_mixes} mixes, {n_callers} callers: out of bounds")
    at = _HEAD.size
    end = at + n_mixes * FRAME_BYTES
    if len(data) < end:
        raise BundleError("truncated in its mixes")
    mixes = tuple(data[i : i + FRAME_BYTES] for i in range(at, end, FRAME_BYTES))
    at = end
    callers: dict[str, int] = {}
    for _ in range(n_callers):
        if at >= len(data):
            raise BundleError("truncated in its callers")
        size = data[at]
        name, index_at = data[at + 1 : at + 1 + size], at + 1 + size
        if index_at >= len(data):
            raise BundleError("truncated in its callers")
        if not _ID.fullmatch(name):
            raise BundleError("a caller id that is not 1-64 of [A-Za-z0-9_.:-]")
        index = data[index_at]
        if index >= n_mixes:
            raise BundleError(f"a caller names mix {index} of {n_mixes}")
        callers[name.decode()] = index
        at = index_at + 1
    if at != len(data):
        raise BundleError(f"{len(data) - at} bytes after the last caller")
    return Bundle(seq, mixes, callers)


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    played: int = 0
    underruns: int = 0  # ticks with nothing to play after playing began
    dropped: int = 0  # frames dropped to bring the buffer back to its target
    late: int = 0  # frames older than one already played
    restarts: int = 0  # the feed's numbering started again
    ages_ms: deque[float] = field(default_factory=lambda: deque(maxlen=3000))  # last minute

    def age_percentiles(self) -> tuple[float, float]:
        """The median and p99 of how long the last minute's frames waited, in ms."""
        if not self.ages_ms:
            return (0.0, 0.0)
        ages = sorted(self.ages_ms)
        return (ages[len(ages) // 2], ages[min(len(ages) - 1, int(len(ages) * 0.99))])


class JitterBuffer:
    """Bundles in as they arrive (`push`), one out per tick of the relay's clock
    (`pop`), `target` frames held as the budget for the network's jitter."""

    def __init__(self, target: int = 3, slack: int = 5) -> None:
        self.target = max(1, target)
        self.slack = max(1, slack)
        self.stats = JitterStats()
        self._frames: deque[tuple[Bundle, float]] = deque()
        self._filling = True
        self._last_seq: int | None = None

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def budget_ms(self) -> float:
        return self.target * FRAME_S * 1000

    def push(self, bundle: Bundle, now: float) -> None:
        """`bundle` arrived at `now` (seconds, the relay's monotonic clock)."""
        self.stats.received += 1
        if self._last_seq is not None:
            behind = (self._last_seq - bundle.seq) % 2**32
            if behind > RESTART_FRAMES and behind < 2**31:
                self.reset()  # far behind: a restarted billboard numbering from 0 again
                self.stats.restarts += 1
            elif behind < 2**31:
                self.stats.late += 1  # not after what was played: a replay or a reorder
                return
        self._frames.append((bundle, now))
        while len(self._frames) > self.target + self.slack:
            self._frames.popleft()
            self.stats.dropped += 1

    def pop(self, now: float) -> Bundle | None:
        """The frame to play at this tick, or None (still filling, or run dry)."""
        if self._filling:
            if len(self._frames) < self.target:
                return None
            self._filling = False
        if not self._frames:
            self._filling = True
            self.stats.underruns += 1
            return None
        bundle, arrived = self._frames.popleft()
        self._last_seq = bundle.seq
        self.stats.played += 1
        self.stats.ages_ms.append((now - arrived) * 1000)
        return bundle

    def reset(self) -> None:
        """A new feed (the billboard reconnected): forget the old one's frames."""
        self._frames.clear()
        self._filling = True
        self._last_seq = None
